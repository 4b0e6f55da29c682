"""bench/uda_ablation.py: each variant is the shipped config with its
toggles switched off by --cfg-options, and the schedule overrides land."""
import os.path as osp
import sys

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'bench'))


def _opts(items):
    # what tools/train.py's --cfg-options (mmengine DictAction) makes of them
    from mmengine.config import DictAction
    out = {}
    for item in items:
        k, v = item.split('=', 1)
        out[k] = DictAction._parse_iterable(v)
    return out


@pytest.mark.parametrize('name,on', [
    ('source_only', set()),
    ('dual_branch', {'dual'}),
    ('mic', {'mix', 'masked', 'rcs'}),
    ('full', {'mix', 'masked', 'rcs', 'dual'}),
])
def test_variant_toggles(name, on):
    import uda_ablation
    cfg = Config.fromfile(osp.join(ROOT, 'configs/mic_dual_aug.py'))
    cfg.merge_from_dict(_opts(uda_ablation.VARIANTS[name] +
                              uda_ablation.schedule_options(400, 50)))
    m = cfg.model
    got = {k for k, v in dict(
        mix=m.mix is not None, masked=m.mask_lambda > 0,
        dual=m.dual_branch_lambda > 0,
        rcs=cfg.train_dataloader.dataset.rare_class_sampling is not None
    ).items() if v}
    assert got == on
    # the same model and schedule for every variant
    assert m.segmentor.decode_head.type == 'DAFormerHead'
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLR']
    # warm-up over iterations 0..50 multiplied onto a poly decay that
    # reaches 0 at iteration 400 (mmengine's end is one past the last step)
    assert (cfg.param_scheduler[0].begin, cfg.param_scheduler[0].end,
            cfg.param_scheduler[1].begin,
            cfg.param_scheduler[1].end) == (0, 51, 0, 401)
