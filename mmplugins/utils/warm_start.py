"""Start a UDA run from a source-only checkpoint (``make demo``, the UDA
ablation's ``--warm-start``).

Real UDA runs initialise the student's backbone from ImageNet weights; a
student trained from scratch is never confident on the target within a few
hundred iterations, so the teacher's pseudo-labels carry almost no weight
and the self-training terms learn nothing. Where the weights cannot be
downloaded (the demo, CI) a short source-only run of the same model stands
in for them. It enters the UDA run the way pretrained weights do, through
the student's ``init_cfg``::

    model.segmentor.init_cfg = dict(type='Pretrained', checkpoint=CKPT,
                                    prefix='student.')

so the UDA run starts at iteration 0 with the teacher copied from the
student, as the reference does. ``load_from`` would instead carry the warm
run's iteration counter (``local_iter``) and its EMA teacher.

The warm run is cached by a hash of its *resolved* config (every inherited
file and override), so it is trained once per config.
"""
import hashlib
import json
import os.path as osp
from typing import List, Optional, Sequence

#: ``--cfg-options`` turning a UDA config into its source-only variant
#: (same model, data and schedule; no target terms, no distortion view, no
#: rare-class sampling) -- bench/uda_ablation.py's ``source_only`` row.
SOURCE_ONLY_OPTIONS = ('model.mix=None', 'model.mask_lambda=0',
                       'model.dual_branch_lambda=0',
                       'train_dataloader.dataset.rare_class_sampling=None')

STAMP = 'warm_start.json'


def student_init_options(checkpoint: str,
                         prefix: str = 'student.') -> List[str]:
    """``--cfg-options`` that initialise a ``UDASegmentor``'s student from
    ``checkpoint`` (a UDASegmentor checkpoint: ``prefix='student.'``; a
    plain mmseg segmentor's: ``prefix=''``)."""
    opts = ['model.segmentor.init_cfg.type=Pretrained',
            f'model.segmentor.init_cfg.checkpoint={checkpoint}']
    if prefix:
        opts.append(f'model.segmentor.init_cfg.prefix={prefix}')
    return opts


def parse_cfg_options(options: Sequence[str]) -> dict:
    """``['a.b=1', ...]`` -> the dict mmengine's ``DictAction`` makes."""
    from mmengine.config import DictAction
    parsed = {}
    for opt in options:
        if '=' not in opt:
            raise ValueError(f'cfg-option {opt!r} is not key=value')
        key, val = opt.split('=', 1)
        parsed[key] = DictAction._parse_iterable(val)
    return parsed


def config_hash(config: str, options: Sequence[str] = ()) -> str:
    """A 16-hex-digit hash of ``config`` resolved with ``options``."""
    from mmengine.config import Config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(parse_cfg_options(options))
    cfg.pop('work_dir', None)
    return hashlib.sha1(cfg.pretty_text.encode()).hexdigest()[:16]


def cached_warm_start(work_dir: str, key: str) -> Optional[dict]:
    """The stamp of a finished warm run in ``work_dir`` with hash ``key``
    (``dict(hash, checkpoint, mIoU, ...)``), or None."""
    stamp = osp.join(work_dir, STAMP)
    if not osp.isfile(stamp):
        return None
    with open(stamp) as f:
        cached = json.load(f)
    if cached.get('hash') != key or not osp.isfile(
            cached.get('checkpoint', '')):
        return None
    return cached


def write_warm_start_stamp(work_dir: str, key: str, checkpoint: str,
                           **info) -> dict:
    """Record a finished warm run (written last, so an interrupted run is
    never reused)."""
    stamp = dict(hash=key, checkpoint=checkpoint, **info)
    with open(osp.join(work_dir, STAMP), 'w') as f:
        json.dump(stamp, f, indent=1)
    return stamp
