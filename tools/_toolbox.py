"""Shared helpers of tools/: pick the toolbox from the config's default_scope."""
import os
import os.path as osp
import sys

# make `import mmplugins` work from a plain checkout (no `pip install -e .`)
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

SUPPORTED_SCOPES = ('mmseg', 'mmdet', 'mmpretrain', 'mmyolo')


def load_config(path, cfg_options=None):
    """Config.fromfile with a clear error for a missing file.

    Configs inheriting ``mmyolo::`` (any ``scope::``) bases get mmengine's
    stray ``_scope_`` keys removed from ``collate_fn`` and ``Albu``
    (:func:`mmplugins.utils.config_scope.strip_stray_scopes`).
    """
    from mmengine.config import Config

    from mmplugins.utils.config_scope import strip_stray_scopes
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # e.g. `mmyolo::` bases without a usable mmyolo
        if 'mmyolo' in str(e):
            from mmplugins.utils.mmyolo_check import require_mmyolo
            require_mmyolo()  # raises the one error naming the install step
        raise
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    strip_stray_scopes(cfg)
    return cfg


def setup_toolbox(cfg):
    """Import mmplugins and the toolbox named by ``cfg.default_scope``.

    Returns the scope name. ``register_all_modules(init_default_scope=False)``
    fills the toolbox registries without touching the default scope: the
    Runner sets it from the config.
    """
    import importlib

    import mmplugins  # noqa: F401  (registers everything, applies fixes)
    scope = cfg.get('default_scope', None)
    if scope is None:
        return None
    if scope not in SUPPORTED_SCOPES and scope != 'mmengine':
        raise ValueError(
            f'config default_scope={scope!r} is not supported by tools/; '
            f'expected one of {SUPPORTED_SCOPES}')
    if scope == 'mmyolo':
        from mmplugins.utils.mmyolo_check import require_mmyolo
        require_mmyolo()
    if scope != 'mmengine':
        utils = importlib.import_module(f'{scope}.utils')
        utils.register_all_modules(init_default_scope=False)
    from mmplugins.utils.config_check import check_config_types
    check_config_types(cfg, scope, cfg.filename)
    return scope


def default_work_dir(config_path):
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def ensure_local_rank():
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = '0'
