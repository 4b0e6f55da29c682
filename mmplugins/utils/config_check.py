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
import importlib.util
from typing import Iterator, List, Optional, Sequence, Set, Tuple

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


def _known_names(scope: Optional[str]) -> Set[str]:
    """Names in every registry of ``scope``, their parents and mmengine's."""
    names: Set[str] = set()
    for reg in _registries(scope):
        reg.import_from_location()
        names.update(reg.module_dict)
        parent = reg.parent
        while parent is not None:
            names.update(parent.module_dict)
            parent = parent.parent
    return names


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


def _walk(node, path: str, parent_type: Optional[str] = None,
          foreign: Sequence = ()) -> Iterator[Tuple[str, str]]:
    if isinstance(node, dict):
        t = node.get('type')
        if isinstance(t, str) and path.rsplit('.', 1)[-1] not in \
                _FOREIGN_KEYS:
            yield path + '.type' if path else 'type', t
        for k, v in node.items():
            if (_bare(t), k) in _FOREIGN_SUBTREES:
                continue
            yield from _walk(v, f'{path}.{k}' if path else str(k),
                             t if isinstance(t, str) else None, foreign)
    elif isinstance(node, (list, tuple)):
        if node and any(node == f for f in foreign):
            return
        for i, v in enumerate(node):
            yield from _walk(v, f'{path}[{i}]', parent_type, foreign)


def check_config_types(cfg, scope: Optional[str] = None,
                       filename: Optional[str] = None) -> None:
    """Raise ``KeyError`` for the first unknown ``type`` in ``cfg``.

    Args:
        cfg (Config | dict): The config.
        scope (str, optional): Default scope (``cfg.default_scope``).
        filename (str, optional): Config file, for the message.
    """
    known = {scope: _known_names(scope)}
    where = f' in {filename}' if filename else ''
    tree = {k: v for k, v in dict(cfg).items()
            if k not in _FOREIGN_VARIABLES}
    for key, name in _walk(tree, '', foreign=_foreign_lists(tree, [])):
        # `scope.Name` (e.g. mmdet.DetVisualizationHook under mmyolo) is
        # looked up in that scope's registries, like mmengine's build does
        name_scope, bare = (name.split('.', 1) if '.' in name else
                            (scope, name))
        if name_scope not in known:
            if not _scope_known(name_scope):
                raise KeyError(
                    f'Unknown type {name!r} at `{key}`{where}: the scope '
                    f'{name_scope!r} is not an installed package.')
            known[name_scope] = _known_names(name_scope)
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
