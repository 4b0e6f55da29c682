"""Catch a misspelt ``type=`` before the Runner builds anything.

mmengine reports an unknown type deep inside the build, as ``'Foo is not in
the mmseg::model registry'`` -- without saying which config entry holds it.
:func:`check_config_types` walks the config once, resolves every string
``type`` against all registries of the config's scope (and their parents)
and raises one error naming the key path, the unknown name and the closest
registered names.
"""
import difflib
import importlib
from typing import Iterator, List, Optional, Set, Tuple

from mmengine import registry as mm_registry
from mmengine.registry import Registry

# sub-trees whose ``type`` values are not OpenMMLab registry names
_FOREIGN_SUBTREES = {
    ('Albu', 'transforms'),  # albumentations class names
}
# keys whose dict's ``type`` names an mmcv op looked up with getattr
_FOREIGN_KEYS = {'nms', 'roi_layer'}


def _registries(scope: Optional[str]) -> List[Registry]:
    regs = [r for r in vars(mm_registry).values() if isinstance(r, Registry)]
    out = list(regs)
    if scope and scope != 'mmengine':
        try:
            mod = importlib.import_module(f'{scope}.registry')
        except ImportError:
            mod = None
        if mod is not None:
            out += [r for r in vars(mod).values() if isinstance(r, Registry)]
    return out


def _known_names(scope: Optional[str]) -> Set[str]:
    names: Set[str] = set()
    for reg in _registries(scope):
        reg.import_from_location()
        names.update(reg.module_dict)
        parent = reg.parent
        while parent is not None:
            names.update(parent.module_dict)
            parent = parent.parent
    return names


def _walk(node, path: str, parent_type: Optional[str] = None
          ) -> Iterator[Tuple[str, str]]:
    if isinstance(node, dict):
        t = node.get('type')
        if isinstance(t, str) and path.rsplit('.', 1)[-1] not in \
                _FOREIGN_KEYS:
            yield path + '.type' if path else 'type', t
        for k, v in node.items():
            if (t if isinstance(t, str) else None, k) in _FOREIGN_SUBTREES:
                continue
            yield from _walk(v, f'{path}.{k}' if path else str(k),
                             t if isinstance(t, str) else None)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{path}[{i}]', parent_type)


def check_config_types(cfg, scope: Optional[str] = None,
                       filename: Optional[str] = None) -> None:
    """Raise ``KeyError`` for the first unknown ``type`` in ``cfg``.

    Args:
        cfg (Config | dict): The config.
        scope (str, optional): Default scope (``cfg.default_scope``).
        filename (str, optional): Config file, for the message.
    """
    known = _known_names(scope)
    where = f' in {filename}' if filename else ''
    for key, name in _walk(dict(cfg), ''):
        bare = name.split('.', 1)[1] if '.' in name else name
        if bare in known:
            continue
        close = difflib.get_close_matches(bare, sorted(known), n=3)
        hint = f' Did you mean {close}?' if close else ''
        raise KeyError(
            f'Unknown type {name!r} at `{key}`{where}: it is not registered '
            f'in any registry of scope {scope!r} (nor mmengine). Check the '
            'spelling, and that the module defining it is imported '
            f'(custom_imports=dict(imports=[...])).{hint}')
