"""Released DAFormer / HRDA / MIC checkpoints (mmseg 0.x) -> mmplugins'.

    python tools/misc/convert_reference_checkpoint.py REF_CKPT OUT_CKPT \\
        --config CONVERTED_CONFIG
    python tools/test.py CONVERTED_CONFIG OUT_CKPT

A checkpoint of the reference's UDA runs holds, in ``state_dict``, the
models of its ``DACS`` module under their attribute names (``model.`` the
trained network, ``ema_model.`` the EMA teacher, ``imnet_model.`` the
frozen ImageNet model of the feature distance, ``mic.teacher.ema_model.``
MIC's separate teacher), each an mmseg 0.x segmentor whose MiT backbone
keeps SegFormer's own names. A source-only / target-only baseline holds one
plain segmentor (``backbone.``, ``decode_head.``). The tables below say
where each key goes; :func:`convert_state_dict` applies them and
:func:`convert_checkpoint` writes the result, checked against the model of
the converted config when one is given.

Contract:

- every reference key is converted or dropped by :data:`DROPPED`; a key the
  tables do not know (another backbone, another head, another module) is one
  ``ValueError`` naming the file and the keys, nothing written;
- with the model of the converted config (``--config``), the converted
  weights must fill it exactly -- every parameter and buffer, same shapes,
  nothing left over -- after the fills of :data:`FILLED`; otherwise one
  ``ValueError`` listing the keys on both sides, nothing written;
- the output is written to a temporary file and moved into place;
- ``meta`` keeps only where the weights came from (``converted_from``,
  ``reference_iter``), not the reference's optimizer, config text or
  environment.
"""
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from .mit_weights import ORIGINAL_KEY, check_fits, checkpoint_state_dict
from .mit_weights import convert_mit as _convert_mit

#: The models of a reference UDA checkpoint (attributes of the reference's
#: ``DACS``) and where they go in :class:`UDASegmentor`:
#: ``(reference prefix, our prefix, what it is)``.
UDA_MODELS = (
    ('model.', 'student.', 'the trained network (DACS.model)'),
    ('ema_model.', 'teacher.', 'the EMA teacher (DACS.ema_model)'),
    ('imnet_model.', 'imnet_model.',
     "the feature distance's frozen ImageNet model (DACS.imnet_model)"),
    ('mic.teacher.ema_model.', 'mic.teacher.',
     "MIC's separate EMA teacher (mask_alpha or mask_pseudo_threshold not "
     "'same')"),
)

#: Reference keys with no counterpart in ours, dropped on purpose:
#: ``(reference prefix, why)``.
DROPPED = (
    ('imnet_model.decode_head.',
     'the reference builds the feature-distance model as a whole segmentor '
     'and uses only its backbone (extract_feat); ours holds the backbone '
     '(and neck) only'),
    ('imnet_model.auxiliary_head.', 'as imnet_model.decode_head.'),
)

#: Our keys the reference does not hold, and what fills them:
#: ``(our key or prefix, how)``.
FILLED = (
    ('local_iter',
     "0: the reference keeps its iteration counter outside the state dict "
     'and starts every run from a checkpoint (load or resume) at 0, which '
     're-initialises the teachers from the student'),
    ('teacher.',
     'from the student, only when the reference checkpoint has no '
     'ema_model (source_only=True runs build none); ours re-initialises '
     'the teacher from the student at iteration 0 anyway'),
)

#: The parts of one segmentor: ``(reference prefix, our prefix, converter)``
#: (``'mit'``: SegFormer's MiT names by mmseg's ``mit2mmseg.py``;
#: ``'head'``: :data:`HEAD_KEYS`).
SEGMENTOR_PARTS = (
    ('backbone.', 'backbone.', 'mit'),
    ('decode_head.', 'decode_head.', 'head'),
)

#: DAFormerHead (the reference's ``decode_heads/daformer_head.py``, embedding
#: ``'mlp'``) key by key: ``(reference regex, our key, tensor op)``. The
#: reference keys the embeddings by backbone level (``str(i)`` for ``i`` in
#: ``in_index``), ours by position in ``in_index``: ``{level}`` is that
#: position (the order in which the levels appear in the checkpoint, which
#: is ``in_index``'s). ``'linear_to_conv1x1'``: the reference embeds with an
#: ``nn.Linear`` (``MLP.proj``), ours with a 1x1 conv of the same weights.
DAFORMER_HEAD_KEYS = (
    (r'embed_layers\.(?P<level>\d+)\.proj\.(?P<p>weight|bias)',
     'embed_layers.{level}.{p}', 'linear_to_conv1x1'),
    # fusion 'aspp' (ASPPWrapper: mmcv ConvModule / DepthwiseSeparable names)
    (r'fuse_layer\.(?P<rest>(aspp_modules|bottleneck|image_pool)\..+)',
     'fuse_layer.{rest}', None),
    # fusion 'conv' (the attention head of HRDA): one ConvModule
    (r'fuse_layer\.(?P<rest>(conv|bn|gn|ln|in)\..+)', 'fuse_layer.{rest}',
     None),
    (r'conv_seg\.(?P<p>weight|bias)', 'conv_seg.{p}', None),
)

#: HRDAHead (the reference's ``decode_heads/hrda_head.py``): two DAFormer
#: heads, ``(reference prefix, our prefix)``; its own ``conv_seg`` is
#: deleted in both.
HRDA_HEAD_PARTS = (
    ('head.', 'head.'),
    ('scale_attention.', 'scale_attention.'),
)

_TENSOR_OPS = {
    None: lambda v: v,
    'linear_to_conv1x1': lambda v: v.reshape(*v.shape, 1, 1)
    if v.dim() == 2 else v,
}


class _Unknown:
    """Reference keys the tables do not convert, grouped by reason."""

    def __init__(self):
        self.by_reason: Dict[str, List[str]] = OrderedDict()

    def add(self, key: str, reason: str):
        self.by_reason.setdefault(reason, []).append(key)

    def __bool__(self):
        return bool(self.by_reason)


def _split(state_dict: Dict, prefix: str) -> OrderedDict:
    return OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                       if k.startswith(prefix))


def _convert_backbone(sd: Dict, ref_prefix: str, unknown: _Unknown):
    bad = [k for k in sd if not ORIGINAL_KEY.match(k)]
    for k in bad:
        unknown.add(ref_prefix + k,
                    'not a MiT (SegFormer) backbone key: only MiT backbones '
                    '(mit_b0..mit_b5) are converted')
    good = OrderedDict((k, v) for k, v in sd.items() if k not in bad)
    # convert_mit concatenates attn.q with attn.kv (found by name)
    for k in list(good):
        pair = (k.replace('.attn.q.', '.attn.kv.') if '.attn.q.' in k else
                k.replace('.attn.kv.', '.attn.q.') if '.attn.kv.' in k else
                None)
        if pair is not None and pair not in good:
            unknown.add(ref_prefix + k,
                        'attention q / kv weights without their pair (mmseg '
                        'concatenates them)')
            del good[k]
    return _convert_mit(good) if good else OrderedDict()


def _convert_daformer_head(sd: Dict, ref_prefix: str, unknown: _Unknown):
    out = OrderedDict()
    levels: List[str] = []
    for k, v in sd.items():
        for pattern, template, op in DAFORMER_HEAD_KEYS:
            m = re.fullmatch(pattern, k)
            if m is None:
                continue
            fields = m.groupdict()
            if 'level' in fields:
                if fields['level'] not in levels:
                    levels.append(fields['level'])
                fields['level'] = levels.index(fields['level'])
            out[template.format(**fields)] = _TENSOR_OPS[op](v)
            break
        else:
            unknown.add(ref_prefix + k,
                        'not a key of the DAFormerHead / HRDAHead that this '
                        "converter knows (embedding 'mlp', fusion 'aspp' or "
                        "'conv')")
    return out


def _convert_head(sd: Dict, ref_prefix: str, unknown: _Unknown):
    hrda = [(rp, op) for rp, op in HRDA_HEAD_PARTS
            if any(k.startswith(rp) for k in sd)]
    if not hrda:
        return _convert_daformer_head(sd, ref_prefix, unknown)
    out = OrderedDict()
    for rp, op in hrda:
        part = _convert_daformer_head(_split(sd, rp), ref_prefix + rp,
                                      unknown)
        out.update((op + k, v) for k, v in part.items())
    for k in sd:
        if not any(k.startswith(rp) for rp, _ in HRDA_HEAD_PARTS):
            unknown.add(ref_prefix + k, 'not a key of an HRDAHead (head., '
                        'scale_attention.)')
    return out


_PART_CONVERTERS = dict(mit=_convert_backbone, head=_convert_head)


def _convert_segmentor(sd: Dict, ref_prefix: str, unknown: _Unknown):
    out = OrderedDict()
    for rp, op, kind in SEGMENTOR_PARTS:
        part = _PART_CONVERTERS[kind](_split(sd, rp), ref_prefix + rp,
                                      unknown)
        out.update((op + k, v) for k, v in part.items())
    for k in sd:
        if not any(k.startswith(rp) for rp, _, _ in SEGMENTOR_PARTS):
            unknown.add(ref_prefix + k,
                        'not a part of a DAFormer / HRDA segmentor (backbone.'
                        ', decode_head.)')
    return out


def _is_uda(state_dict: Dict) -> bool:
    prefixes = tuple(p for p, _, _ in UDA_MODELS) + tuple(
        p for p, _ in DROPPED)
    return any(k.startswith(prefixes) for k in state_dict)


def convert_state_dict(state_dict: Dict, filename: str = 'checkpoint'
                       ) -> Tuple[OrderedDict, dict]:
    """Reference keys -> ours by the tables of this module.

    Returns ``(state_dict, report)``; ``report`` has ``layout`` (``'uda'`` /
    ``'segmentor'``), ``models`` (the reference prefixes found) and
    ``dropped`` (the keys dropped by :data:`DROPPED`).

    Raises:
        ValueError: keys the tables do not convert (naming ``filename`` and
            the keys, grouped by reason).
    """
    unknown = _Unknown()
    report = dict(dropped=[], models=[])
    out = OrderedDict()
    if _is_uda(state_dict):
        report['layout'] = 'uda'
        for k in state_dict:
            if k.startswith(tuple(p for p, _ in DROPPED)):
                report['dropped'].append(k)
            elif not k.startswith(tuple(p for p, _, _ in UDA_MODELS)):
                unknown.add(k, 'not a model of a DAFormer / HRDA / MIC UDA '
                            'checkpoint (model., ema_model., imnet_model., '
                            'mic.teacher.ema_model.)')
        dropped = set(report['dropped'])
        kept = OrderedDict((k, v) for k, v in state_dict.items()
                           if k not in dropped)
        for rp, op, _ in UDA_MODELS:
            part = _split(kept, rp)
            if not part:
                continue
            report['models'].append(rp)
            conv = _convert_segmentor(part, rp, unknown)
            out.update((op + k, v) for k, v in conv.items())
    else:
        report['layout'] = 'segmentor'
        out = _convert_segmentor(state_dict, '', unknown)
    if unknown:
        total = sum(map(len, unknown.by_reason.values()))
        msg = (f'{filename}: {total} of {len(state_dict)} keys are not '
               'DAFormer / HRDA / MIC weights this converter knows; nothing '
               'written.')
        if not out:
            msg = (f'{filename} is not a DAFormer / HRDA / MIC checkpoint '
                   f'(MiT backbone, DAFormer or HRDA head): first key '
                   f'{next(iter(state_dict), None)!r}; nothing written.')
        for reason, keys in unknown.by_reason.items():
            more = (f' ... and {len(keys) - 20} more'
                    if len(keys) > 20 else '')
            msg += f'\n  {reason} ({len(keys)}): {keys[:20]}{more}'
        raise ValueError(msg)
    return out, report


def fill_for_model(state_dict: OrderedDict, model: torch.nn.Module,
                   report: dict) -> List[str]:
    """Apply :data:`FILLED` for ``model``; returns what was filled."""
    own = model.state_dict()
    notes = []
    if 'local_iter' in own and 'local_iter' not in state_dict:
        state_dict['local_iter'] = torch.zeros_like(own['local_iter'])
        notes.append('local_iter = 0')
    if report.get('layout') == 'uda' and 'ema_model.' not in \
            report['models'] and any(k.startswith('teacher.') for k in own):
        for k in own:
            if k.startswith('teacher.') and \
                    'student.' + k[len('teacher.'):] in state_dict:
                state_dict[k] = state_dict['student.' +
                                           k[len('teacher.'):]].clone()
        notes.append('teacher = student (the reference checkpoint has no '
                     'ema_model)')
    return notes


def load_reference(filename: str, unsafe: bool = False) -> dict:
    """``torch.load`` a reference checkpoint (the safe loader unless
    ``unsafe``)."""
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    try:
        return torch.load(filename, map_location='cpu',
                          weights_only=not unsafe)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        if unsafe:
            raise ValueError(f'{filename}: not a loadable torch checkpoint: '
                             f'{str(e).splitlines()[0][:300]}') from e
        raise ValueError(
            f'{filename}: the safe loader (torch.load(weights_only=True)) '
            'cannot read it: not a torch checkpoint, or one holding Python '
            'objects. If you trust the file, pass --unsafe-load. Error: '
            f'{str(e).splitlines()[0][:300]}') from e


def convert_checkpoint(src: str, out: str,
                       model: Optional[torch.nn.Module] = None,
                       model_name: str = 'the model',
                       unsafe: bool = False) -> dict:
    """Convert the reference checkpoint ``src`` into ``out``.

    Args:
        src (str): a released DAFormer / HRDA / MIC checkpoint.
        out (str): where to write ours (temp file + ``os.replace``).
        model (nn.Module, optional): the model of the converted config; the
            result must fill it exactly (see the module docstring).
        model_name (str): how to name ``model`` in errors (its config).
        unsafe (bool): load ``src`` with the full pickle loader.

    Returns:
        The report (``layout``, ``models``, ``dropped``, ``filled``,
        ``num_tensors``).
    """
    checkpoint = load_reference(src, unsafe)
    state_dict = checkpoint_state_dict(checkpoint, src)
    converted, report = convert_state_dict(state_dict, src)
    report['filled'] = []
    if model is not None:
        report['filled'] = fill_for_model(converted, model, report)
        try:
            check_fits(model, converted, src, model_name)
        except ValueError as e:
            hint = ''
            if report['layout'] == 'segmentor' and any(
                    k.startswith('student.') for k in model.state_dict()):
                hint = ('\n  The checkpoint holds one plain segmentor (a '
                        'source-only / target-only baseline); the config '
                        'builds a UDA model.')
            raise ValueError(f'{e}\n  (after the conversion; nothing '
                             f'written){hint}') from None
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    result = dict(
        meta=dict(
            converted_from=osp.abspath(src),
            converter='tools/misc/convert_reference_checkpoint.py',
            reference_iter=(meta or {}).get('iter')),
        state_dict=converted)
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=osp.basename(out) + '.',
                               suffix='.tmp', dir=out_dir)
    os.close(fd)
    try:
        torch.save(result, tmp)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    report['num_tensors'] = len(converted)
    return report
