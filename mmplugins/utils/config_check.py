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
from typing import Dict, Iterator, List, Optional, Set, Tuple

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


def _known_classes(scope: Optional[str]) -> Dict[str, type]:
    """Every registered name of the scope's registries (and their parents)
    -> its class (the first registry that has it wins)."""
    classes: Dict[str, type] = {}
    for reg in _registries(scope):
        reg.import_from_location()
        while reg is not None:
            for name, cls in reg.module_dict.items():
                classes.setdefault(name, cls)
            reg = reg.parent
    return classes


def _known_names(scope: Optional[str]) -> Set[str]:
    return set(_known_classes(scope))


def _nested_types(cls) -> Dict[str, Tuple[str, ...]]:
    """A registered class's ``NESTED_TYPES``: dotted key paths inside its
    config whose dict takes a ``type`` the class interprets itself (e.g.
    ``DAFormerHead``'s ``fusion_cfg=dict(type='aspp')``), with the names
    it accepts. The class validates with the same tuple, so the pre-flight
    and the module cannot disagree."""
    return dict(getattr(cls, 'NESTED_TYPES', None) or {})


def _walk(node, path: str, classes: Dict[str, type],
          declared: Optional[Dict[str, Tuple[str, ...]]] = None
          ) -> Iterator[Tuple[str, str, Optional[Tuple[str, ...]]]]:
    """Yield ``(key path, type name, accepted names or None)``; None means
    "look the name up in the registries"."""
    declared = declared or {}
    if isinstance(node, dict):
        t = node.get('type')
        here = declared.get('')
        nested: Dict[str, Tuple[str, ...]] = {}
        if isinstance(t, str):
            key = path + '.type' if path else 'type'
            if here is not None:
                yield key, t, tuple(here)
            elif path.rsplit('.', 1)[-1] not in _FOREIGN_KEYS:
                yield key, t, None
                bare = t.split('.', 1)[1] if '.' in t else t
                nested = _nested_types(classes.get(bare))
        below = {p: n for p, n in declared.items() if p}
        below.update(nested)
        for k, v in node.items():
            if (t if isinstance(t, str) else None, k) in _FOREIGN_SUBTREES:
                continue
            sub = {}
            for p, names in below.items():
                head, _, rest = p.partition('.')
                if head == k:
                    sub[rest] = names
            yield from _walk(v, f'{path}.{k}' if path else str(k), classes,
                             sub)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{path}[{i}]', classes, declared)


def check_config_types(cfg, scope: Optional[str] = None,
                       filename: Optional[str] = None) -> None:
    """Raise ``KeyError`` for the first unknown ``type`` in ``cfg``.

    A ``type`` is known when a registry of the scope (or mmengine's) has
    it, or -- inside a key path that a registered class declares in its
    ``NESTED_TYPES`` -- when that class accepts it.

    Args:
        cfg (Config | dict): The config.
        scope (str, optional): Default scope (``cfg.default_scope``).
        filename (str, optional): Config file, for the message.
    """
    classes = _known_classes(scope)
    where = f' in {filename}' if filename else ''
    for key, name, accepted in _walk(dict(cfg), '', classes):
        if accepted is not None:
            if name in accepted:
                continue
            close = difflib.get_close_matches(name, accepted, n=3)
            hint = f' Did you mean {close}?' if close else ''
            raise KeyError(
                f'Unknown type {name!r} at `{key}`{where}: this key takes '
                f'one of {list(accepted)}.{hint}')
        bare = name.split('.', 1)[1] if '.' in name else name
        if bare in classes:
            continue
        close = difflib.get_close_matches(bare, sorted(classes), n=3)
        hint = f' Did you mean {close}?' if close else ''
        raise KeyError(
            f'Unknown type {name!r} at `{key}`{where}: it is not registered '
            f'in any registry of scope {scope!r} (nor mmengine). Check the '
            'spelling, and that the module defining it is imported '
            f'(custom_imports=dict(imports=[...])).{hint}')
