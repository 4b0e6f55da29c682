"""SegFormer's original MiT weights in mmseg 1.x's ``MixVisionTransformer``.

SegFormer's ImageNet checkpoints (``mit_b0.pth`` .. ``mit_b5.pth``, what
DAFormer / HRDA / MIC load through ``model.pretrained``) name their tensors
after SegFormer's own modules (``patch_embed1.proj.weight``,
``block1.0.attn.q.weight`` / ``attn.kv.weight``, ``norm1.weight``, ...);
mmseg 1.x's ``MixVisionTransformer`` names them ``layers.0.0.projection``,
``layers.0.1.0.attn.attn.in_proj_weight`` (q and kv concatenated), ... Stock
mmengine loads such a file into the backbone with ``strict=False``: one
WARNING listing the missing keys, and a randomly initialised backbone.

With mmplugins imported, ``init_cfg=dict(type='Pretrained', checkpoint=...)``
(or mmseg's ``pretrained=``) on a ``MixVisionTransformer`` goes through
:func:`load_mit_checkpoint` instead:

- SegFormer's naming is recognised by its keys and converted on the fly with
  ``convert_mit`` of mmseg's own ``tools/model_converters/mit2mmseg.py``,
  executed from the installed mmseg package (``mmseg/.mim/...``; not copied);
- the weights must then fill the backbone exactly: a key missing, left over
  or of another shape is one ``ValueError`` naming the file and the keys
  (e.g. a MiT-B5 file into a MiT-B2 backbone, whose keys are a subset of
  B5's), never a partly random backbone.

Checkpoints already in mmseg's naming (e.g. OpenMMLab's converted
``mit_b5_20220624-658746d9.pth``) load as before, under the same check.
"""
import importlib.util
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import torch

#: mmseg's converter, relative to the installed ``mmseg`` package
MIT2MMSEG = osp.join('.mim', 'tools', 'model_converters', 'mit2mmseg.py')

#: a key of SegFormer's own MixVisionTransformer (the reference's
#: ``mmseg/models/backbones/mix_transformer.py``)
ORIGINAL_KEY = re.compile(r'^(patch_embed|block|norm)[1-9]\d*\.')

_CONVERT_MIT: List[Callable] = []


def mit2mmseg_path() -> str:
    """Path of ``mit2mmseg.py`` in the installed mmseg package."""
    spec = importlib.util.find_spec('mmseg')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('mmsegmentation is not installed: it is needed to '
                          "convert SegFormer's original MiT weights")
    return osp.join(list(spec.submodule_search_locations)[0], MIT2MMSEG)


def convert_mit(state_dict: Dict[str, torch.Tensor]) -> OrderedDict:
    """SegFormer's MiT names -> mmseg 1.x's, by mmseg's own ``convert_mit``
    (``mmseg/.mim/tools/model_converters/mit2mmseg.py``, run from the
    installed package). It drops ImageNet classifier keys (``head.*``) and
    passes keys it does not know through unchanged."""
    if not _CONVERT_MIT:
        path = mit2mmseg_path()
        if not osp.isfile(path):
            raise FileNotFoundError(
                f"mmseg's MiT converter is missing: {path} (it ships with "
                'mmsegmentation 1.x under mmseg/.mim/tools/model_converters)')
        spec = importlib.util.spec_from_file_location(
            'mmplugins_mmseg_mit2mmseg', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _CONVERT_MIT.append(module.convert_mit)
    return _CONVERT_MIT[0](state_dict)


def is_original_mit(state_dict: Dict[str, torch.Tensor]) -> bool:
    """True when ``state_dict`` is in SegFormer's MiT naming: a key
    ``patch_embed<i>.`` / ``block<i>.`` / ``norm<i>.`` and none of mmseg's
    ``layers.``. (Other keys pass through the conversion unchanged, and the
    fit check then names them.)"""
    keys = list(state_dict)
    return (any(ORIGINAL_KEY.match(k) for k in keys)
            and not any(k.startswith('layers.') for k in keys))


def checkpoint_state_dict(checkpoint, filename: str) -> Dict:
    """The weights of a loaded checkpoint: its ``state_dict`` or ``model``
    entry (SegFormer / timm files), else the dict itself (as the reference's
    MiT ``init_weights`` reads it), without DDP's ``module.`` prefix."""
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{filename}: not a checkpoint (a dict of tensors '
                         f'expected, got {type(checkpoint).__name__})')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    return OrderedDict((re.sub(r'^module\.', '', k), v)
                       for k, v in checkpoint.items())


def _listing(title: str, keys: List[str], limit: int = 20) -> str:
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return f'\n  {title} ({len(keys)}): {keys[:limit]}{more}'


def check_fits(module: torch.nn.Module, state_dict: Dict, filename: str,
               what: str) -> None:
    """Raise one ValueError unless ``state_dict`` fills every parameter and
    buffer of ``module`` with a tensor of its shape, and holds nothing
    else."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f'{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
        for k, v in own.items() if k in state_dict and hasattr(
            state_dict[k], 'shape') and state_dict[k].shape != v.shape
    ]
    if not (missing or unexpected or shapes):
        return
    msg = (f'{filename} does not fit {what}: '
           f'{len(own) - len(missing) - len(shapes)} of {len(own)} of its '
           'tensors matched by name and shape.')
    if missing:
        msg += _listing('not in the checkpoint', missing)
    if unexpected:
        msg += _listing('in the checkpoint but not in the model', unexpected)
    if shapes:
        msg += _listing('shape (checkpoint vs model)', shapes)
    raise ValueError(msg)


def _hint(state_dict: Dict) -> str:
    keys = list(state_dict)
    if any(k.startswith(('model.backbone.', 'ema_model.')) for k in keys):
        return ('\n  It looks like a DAFormer/HRDA/MIC training checkpoint: '
                'convert it with `python tools/misc/'
                'convert_reference_checkpoint.py REF_CKPT OUT_CKPT`, or load '
                "one model's backbone with prefix='model.backbone.'.")
    if any(k.startswith('backbone.') for k in keys):
        return ("\n  It holds a whole segmentor: load its backbone with "
                "init_cfg=dict(type='Pretrained', checkpoint=..., "
                "prefix='backbone.').")
    return ''


def load_mit_checkpoint(module: torch.nn.Module, filename: str,
                        prefix: Optional[str] = None,
                        map_location='cpu',
                        logger='current') -> OrderedDict:
    """Load ``filename`` into the MiT ``module``; SegFormer's names are
    converted on the fly. Returns the weights loaded (mmseg naming).

    Args:
        module: an mmseg ``MixVisionTransformer``.
        filename (str): checkpoint path or URL (mmengine's loaders).
        prefix (str, optional): only the keys under this prefix, with it
            removed (as ``Pretrained``'s ``prefix``), e.g. ``'backbone.'``.
        map_location: as in ``torch.load``.

    Raises:
        ValueError: the weights do not fill the backbone exactly (names the
            file and the missing / left-over / mis-shaped keys).
    """
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import CheckpointLoader
    checkpoint = CheckpointLoader.load_checkpoint(
        filename, map_location=map_location, logger=logger)
    state_dict = checkpoint_state_dict(checkpoint, filename)
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        under = OrderedDict((k[len(prefix):], v)
                            for k, v in state_dict.items()
                            if k.startswith(prefix))
        if not under:
            raise ValueError(
                f'{filename}: no key starts with prefix={prefix!r} (first '
                f'keys: {list(state_dict)[:5]})' + _hint(state_dict))
        state_dict = under
    if is_original_mit(state_dict):
        state_dict = convert_mit(state_dict)
        print_log(
            f"{filename}: SegFormer's original MiT key names; converted "
            "with mmseg's tools/model_converters/mit2mmseg.py (convert_mit)",
            logger=logger)
    try:
        check_fits(module, state_dict, filename,
                   f'this {type(module).__name__} (embed_dims='
                   f'{getattr(module, "embed_dims", "?")}, num_layers='
                   f'{getattr(module, "num_layers", "?")})')
    except ValueError as e:
        raise ValueError(str(e) + _hint(state_dict)) from None
    module.load_state_dict(state_dict, strict=True)
    return state_dict
