"""Catch a misspelt ``type=`` before the Runner builds anything.

mmengine reports an unknown type deep inside the build, as ``'Foo is not in
the mmseg::model registry'`` -- without saying which config entry holds it.
:func:`check_config_types` walks the config once, resolves every string
``type`` against all registries of the config's scope (and their parents)
and raises one error naming the key path, the unknown name and the closest
registered names. ``scope.Name`` is looked up in that scope's registries
(as mmengine's build does). Inside a key path that a registered class
declares in its ``NESTED_TYPES`` (e.g. ``DAFormerHead``'s ``fusion_cfg``),
``type`` is one of the names that class accepts -- the tuple it validates
with, so the pre-flight and the module cannot disagree.
"""
import difflib
import importlib
import importlib.util
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

from mmengine import registry as mm_registry
from mmengine.registry import Registry

# sub-trees whose ``type`` values are not OpenMMLab registry names
_FOREIGN_SUBTREES = {
    ('Albu', 'transforms'),  # albumentations class names
}
# top-level variables of mmdet / mmyolo configs that hold albumentations
# class names (used, if at all, as an Albu's ``transforms``)
_FOREIGN_VARIABLES = {'albu_train_transforms'}
# keys whose dict's ``type`` names an mmcv op looked up with getattr
_FOREIGN_KEYS = {'nms', 'roi_layer'}


def _registries(scope: Optional[str]) -> List[Registry]:
    regs = [r for r in vars(mm_registry).values() if isinstance(r, Registry)]
    out = list(regs)
    if scope and scope != 'mmengine':
        if scope == 'mmyolo':
            from .mmyolo_check import require_mmyolo
            require_mmyolo()  # PyPI's 0.6.0 fails at import: name the fix
        try:
            mod = importlib.import_module(f'{scope}.registry')
        except ImportError:
            mod = None
        if mod is not None:
            out += [r for r in vars(mod).values() if isinstance(r, Registry)]
    return out


def _scope_known(scope: str) -> bool:
    if scope == 'mmengine':
        return True
    return importlib.util.find_spec(scope) is not None


def _known_classes(scope: Optional[str]) -> Dict[str, type]:
    """Every registered name of the scope's registries (and their parents,
    mmengine's included) -> its class (the first registry that has it)."""
    classes: Dict[str, type] = {}
    for reg in _registries(scope):
        reg.import_from_location()
        while reg is not None:
            for name, cls in reg.module_dict.items():
                classes.setdefault(name, cls)
            reg = reg.parent
    return classes


def _known_names(scope: Optional[str]) -> Set[str]:
    """Names in every registry of ``scope``, their parents and mmengine's."""
    return set(_known_classes(scope))


def _nested_types(cls) -> Dict[str, Tuple[str, ...]]:
    """A registered class's ``NESTED_TYPES``: dotted key paths inside its
    config whose dict takes a ``type`` the class interprets itself, with
    the names it accepts."""
    return dict(getattr(cls, 'NESTED_TYPES', None) or {})


def _bare(t) -> Optional[str]:
    return t.rsplit('.', 1)[-1] if isinstance(t, str) else None


def _foreign_lists(node, out: list) -> list:
    """The values of foreign sub-trees (an ``Albu``'s ``transforms``), so
    that a config variable holding the same list is skipped too (mmyolo's
    ``albu_train_transforms``)."""
    if isinstance(node, dict):
        t = _bare(node.get('type'))
        for k, v in node.items():
            if (t, k) in _FOREIGN_SUBTREES:
                out.append(v)
            else:
                _foreign_lists(v, out)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _foreign_lists(v, out)
    return out


def _walk(node, path: str, classes: Dict[str, type],
          declared: Optional[Dict[str, Tuple[str, ...]]] = None,
          foreign: Sequence = ()
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
                nested = _nested_types(classes.get(_bare(t)))
        below = {p: n for p, n in declared.items() if p}
        below.update(nested)
        for k, v in node.items():
            if (_bare(t), k) in _FOREIGN_SUBTREES:
                continue
            sub = {}
            for p, names in below.items():
                head, _, rest = p.partition('.')
                if head == k:
                    sub[rest] = names
            yield from _walk(v, f'{path}.{k}' if path else str(k), classes,
                             sub, foreign)
    elif isinstance(node, (list, tuple)):
        if node and any(node == f for f in foreign):
            return
        for i, v in enumerate(node):
            yield from _walk(v, f'{path}[{i}]', classes, declared, foreign)


def check_config_types(cfg, scope: Optional[str] = None,
                       filename: Optional[str] = None) -> None:
    """Raise ``KeyError`` for the first unknown ``type`` in ``cfg``.

    Args:
        cfg (Config | dict): The config.
        scope (str, optional): Default scope (``cfg.default_scope``).
        filename (str, optional): Config file, for the message.
    """
    known = {scope: _known_classes(scope)}
    where = f' in {filename}' if filename else ''
    tree = {k: v for k, v in dict(cfg).items()
            if k not in _FOREIGN_VARIABLES}
    for key, name, accepted in _walk(tree, '', known[scope],
                                     foreign=_foreign_lists(tree, [])):
        if accepted is not None:
            if name in accepted:
                continue
            close = difflib.get_close_matches(name, accepted, n=3)
            hint = f' Did you mean {close}?' if close else ''
            raise KeyError(
                f'Unknown type {name!r} at `{key}`{where}: this key takes '
                f'one of {list(accepted)}.{hint}')
        # `scope.Name` (e.g. mmdet.DetVisualizationHook under mmyolo) is
        # looked up in that scope's registries, like mmengine's build does
        name_scope, bare = (name.split('.', 1) if '.' in name else
                            (scope, name))
        if name_scope not in known:
            if not _scope_known(name_scope):
                raise KeyError(
                    f'Unknown type {name!r} at `{key}`{where}: the scope '
                    f'{name_scope!r} is not an installed package.')
            known[name_scope] = _known_classes(name_scope)
        if bare in known[name_scope]:
            continue
        close = difflib.get_close_matches(bare, sorted(known[name_scope]),
                                          n=3)
        hint = f' Did you mean {close}?' if close else ''
        raise KeyError(
            f'Unknown type {name!r} at `{key}`{where}: it is not registered '
            f'in any registry of scope {name_scope!r} (nor mmengine). Check '
            'the spelling, and that the module defining it is imported '
            f'(custom_imports=dict(imports=[...])).{hint}')
