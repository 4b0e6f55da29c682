"""Drop the ``_scope_`` keys mmengine puts where no registry reads them.

mmengine 0.10.7 marks every dict with a ``type`` that a config takes from a
``scope::`` base with ``_scope_=<scope>`` (``Config._dict_to_config_dict`` /
``_parse_scope``). Registries consume that key, but two places in the
OpenMMLab pipeline are no registry builds:

* ``*_dataloader.collate_fn``: the Runner pops ``type`` and passes the rest
  as keyword arguments (``partial(fn, **cfg)``), so mmyolo's
  ``yolov5_collate`` gets ``_scope_`` -> ``TypeError``;
* the ``transforms`` list and ``bbox_params`` of ``Albu`` (mmdet, mmyolo
  ``mmdet.Albu``): albumentations classes built with ``cls(**cfg)`` ->
  ``TypeError: ... unexpected keyword argument '_scope_'``.

:func:`strip_stray_scopes` removes the key exactly there (and nowhere else);
``tools/`` call it on every config they load.
"""
from typing import Any, List

__all__ = ['strip_stray_scopes']


def _drop_scope(node, where: str, removed: List[str]) -> None:
    if isinstance(node, dict):
        if '_scope_' in node:
            del node['_scope_']
            removed.append(where)
        for key, value in node.items():
            _drop_scope(value, f'{where}.{key}', removed)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _drop_scope(value, f'{where}[{i}]', removed)


def _walk(node, where: str, removed: List[str]) -> None:
    if isinstance(node, dict):
        t = node.get('type')
        if isinstance(t, str) and t.rsplit('.', 1)[-1] == 'Albu':
            for key in ('transforms', 'bbox_params', 'keypoint_params'):
                if key in node:
                    _drop_scope(node[key], f'{where}.{key}', removed)
        for key, value in node.items():
            if key == 'collate_fn' and isinstance(value, dict):
                if '_scope_' in value:
                    del value['_scope_']
                    removed.append(f'{where}.{key}' if where else key)
                continue
            _walk(value, f'{where}.{key}' if where else str(key), removed)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _walk(value, f'{where}[{i}]', removed)


def strip_stray_scopes(cfg: Any) -> List[str]:
    """Remove ``_scope_`` from ``collate_fn`` dicts and ``Albu`` sub-trees.

    Args:
        cfg (Config | dict): Modified in place.

    Returns:
        list[str]: Key paths the key was removed from.
    """
    removed: List[str] = []
    root = cfg._cfg_dict if hasattr(cfg, '_cfg_dict') else cfg
    _walk(root, '', removed)
    return removed
