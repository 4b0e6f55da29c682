"""Third-party extensions: packages declaring an ``mmplugins`` entry point.

A package extends mmplugins the same way mmplugins extends OpenMMLab: it
registers its classes with :func:`mmplugins.registry.register_module` in a
module, and declares that module in its packaging metadata::

    # pyproject.toml of the third-party package
    [project.entry-points.mmplugins]
    my_trick = "my_package.my_trick"

``import mmplugins`` imports every such module once. A plugin that fails to
import raises an error naming the entry point (set ``MMPLUGINS_NO_PLUGINS=1``
to skip third-party plugins entirely, e.g. to debug a broken one).
"""
import importlib
import os
from importlib import metadata
from typing import Dict

ENTRY_POINT_GROUP = 'mmplugins'

#: entry point name -> imported module, filled by :func:`load_plugins`.
LOADED: Dict[str, object] = {}


def load_plugins() -> Dict[str, object]:
    if os.environ.get('MMPLUGINS_NO_PLUGINS'):
        return LOADED
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in LOADED:
            continue
        try:
            LOADED[ep.name] = ep.load()
        except Exception as e:  # noqa: BLE001 - re-raised with context
            dist = getattr(ep, 'dist', None)
            who = f' (from package {dist.name})' if dist is not None else ''
            raise ImportError(
                f'mmplugins: third-party plugin entry point {ep.name!r} = '
                f'{ep.value!r}{who} failed to import: {e!r}. Fix or uninstall '
                f'that package, or set MMPLUGINS_NO_PLUGINS=1.') from e
    return LOADED
