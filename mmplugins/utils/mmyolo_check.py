"""Import mmyolo, or say in one error how to install the build that works.

mmyolo 0.6.0 (its last release) asserts ``mmcv < 2.1.0`` at import, so
PyPI's wheel cannot be imported on this stack (mmcv 2.1.0). ``make install``
installs ``mmyolo==0.6.0+mmcv21``: PyPI's wheel with only that cap raised to
mmdet 3.3.0's own limit (``tools/install/repack_mmyolo.py``). mmyolo is
GPL-3.0 and stays a separately installed dependency; mmplugins never copies
its code.
"""
import importlib
import importlib.metadata

__all__ = ['MMYOLO_BUILD', 'MMYOLO_INSTALL_HINT', 'require_mmyolo']

#: The distribution version ``make install`` installs.
MMYOLO_BUILD = '0.6.0+mmcv21'
MMYOLO_INSTALL_HINT = (
    f'run `make install` (or only this step: `bash '
    f'tools/install/install_mmyolo.sh .venv`), which installs mmyolo=='
    f'{MMYOLO_BUILD}: PyPI\'s mmyolo 0.6.0 with only its import-time cap '
    '`mmcv_maximum_version` raised to mmdet 3.3.0\'s limit (see '
    'docs/installation.md)')


def require_mmyolo():
    """Return the imported ``mmyolo`` module.

    Raises:
        ImportError: mmyolo is not installed, or it is PyPI's unpatched
            0.6.0 (or another build that refuses this mmcv); the message
            names the install command.
    """
    try:
        version = importlib.metadata.version('mmyolo')
    except importlib.metadata.PackageNotFoundError:
        raise ImportError('mmyolo is not installed (configs with '
                          "default_scope='mmyolo' or `mmyolo::` bases need "
                          f'it): {MMYOLO_INSTALL_HINT}') from None
    if version == '0.6.0':
        raise ImportError(
            'mmyolo 0.6.0 from PyPI is installed; it refuses mmcv 2.1.0 at '
            f'import (mmcv_maximum_version = \'2.1.0\'): '
            f'{MMYOLO_INSTALL_HINT}')
    try:
        return importlib.import_module('mmyolo')
    except AssertionError as e:
        raise ImportError(f'mmyolo {version} cannot be imported on this '
                          f'stack ({e}): {MMYOLO_INSTALL_HINT}') from None
