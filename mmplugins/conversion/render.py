"""Write a converted config as Python source, with the mapped / ignored /
unsupported notes as a comment block at its top."""
import math
import os.path as osp

from .base import _Expr
from .tables import BASE_RUNTIME, BASE_SCHEDULE, REPO_ROOT as _ROOT


def _fmt(v, indent=0, col=None):
    """Python source of ``v`` starting at column ``col`` of a line indented
    by ``indent``; on one line when it fits in 79 columns."""
    col = indent if col is None else col
    one = _fmt_one(v)
    if col + len(one) + 2 <= 79:  # room for a closing ')' and ','
        return one
    pad = ' ' * (indent + 4)
    if isinstance(v, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in v):
            items = [f'{pad}{k}=' + _fmt(x, indent + 4,
                                          indent + 4 + len(k) + 1)
                     for k, x in v.items()]
            return 'dict(\n' + ',\n'.join(items) + ')'
        items = [f'{pad}{k!r}: ' + _fmt(x, indent + 4,
                                         indent + 4 + len(repr(k)) + 2)
                 for k, x in v.items()]
        return '{\n' + ',\n'.join(items) + '}'
    if isinstance(v, (list, tuple)):
        opener, closer = ('(', ')') if isinstance(v, tuple) else ('[', ']')
        items = [pad + _fmt(x, indent + 4) for x in v]
        tail = ',' if isinstance(v, tuple) and len(v) == 1 else ''
        return opener + '\n' + ',\n'.join(items) + tail + closer
    return one


def _fmt_one(v):
    if isinstance(v, _Expr):
        return v.text
    if isinstance(v, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in v):
            return 'dict(' + ', '.join(f'{k}={_fmt_one(x)}'
                                       for k, x in v.items()) + ')'
        return '{' + ', '.join(f'{k!r}: {_fmt_one(x)}'
                               for k, x in v.items()) + '}'
    if isinstance(v, tuple):
        inner = ', '.join(_fmt_one(x) for x in v)
        return '(' + inner + (',' if len(v) == 1 else '') + ')'
    if isinstance(v, list):
        return '[' + ', '.join(_fmt_one(x) for x in v) + ']'
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return f'float({str(v)!r})'  # bare `inf` would not load
    return repr(v)


def _comment_block(title, lines):
    if not lines:
        return []
    out = [f'# {title}:']
    out += [f'#   {line}' for line in lines]
    return out + ['#']


def render(conv, src_path: str, out_path: str,
           allow_unsupported: bool) -> str:
    out_dir = osp.dirname(osp.abspath(out_path))

    def rel(p):
        # relative inside the repository (the config moves with it),
        # absolute for an output outside it
        try:
            r = osp.relpath(p, out_dir)
        except ValueError:  # another drive (Windows)
            return p
        inside = not osp.relpath(out_dir, _ROOT).startswith('..')
        return r if inside else p

    model = conv.model_cfg()  # may add notes: before the header
    header = [
        f'# Converted from {src_path}',
        '# by tools/misc/convert_reference_config.py (see its docstring for '
        'the key mapping).',
        '#',
    ]
    if conv.unsupported:
        header += _comment_block(
            'UNSUPPORTED (no mmplugins equivalent; NOT converted, written '
            'with --allow-unsupported)', conv.unsupported)
    seg = model.get('segmentor') or model
    backbone = seg.get('backbone') or {}
    init = backbone.get('init_cfg') or {}
    if init.get('checkpoint') and \
            backbone.get('type') == 'MixVisionTransformer':
        header += [
            f"# NB: the backbone checkpoint {init['checkpoint']!r} loads as "
            "the reference's: SegFormer's original",
            '#   MiT names are converted on the fly (mmplugins/conversion/'
            'mit_weights.py); weights that',
            '#   do not fill the backbone exactly stop with an error naming '
            'the keys.', '#']
    header += _comment_block('Ignored', conv.ignored)
    header += _comment_block('Mapped', conv.mapped)
    body = [f'_base_ = {_fmt([rel(BASE_RUNTIME), rel(BASE_SCHEDULE)])}']
    order = ['train_dataloader', 'val_dataloader', 'test_dataloader',
             'val_evaluator', 'test_evaluator', 'optim_wrapper',
             'param_scheduler', 'train_cfg', 'default_hooks', 'randomness',
             'model_wrapper_cfg', 'env_cfg', 'log_level', 'load_from',
             'resume', 'work_dir']
    body.append(f'model = {_fmt(model, 0, 8)}')
    for k in order:
        if k in conv.out:
            v = conv.out[k]
            if k == 'optim_wrapper':  # replace the base's optimizer whole
                v = dict(_delete_=True, **v)
            if k == 'param_scheduler':  # end = iterations + 1, as the base
                v = [dict(sch, end=_Expr(f"{sch['end'] - 1} + 1"))
                     for sch in v]
            body.append(f'{k} = {_fmt(v, 0, len(k) + 3)}')
    return '\n'.join(header + body) + '\n'
