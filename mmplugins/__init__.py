"""mmplugins: competition-winning training tricks for OpenMMLab 2.0.

``import mmplugins`` (or ``custom_imports=dict(imports=['mmplugins'])`` in a
config) registers every module of the package and of installed third-party
plugins, and applies the stack fixes in :mod:`mmplugins.compat`. It does not
change the default scope. The fixes *are* process-wide changes, each made
only where the pinned stack fails and listed in ``docs/installation.md``:
torch's safe-globals list gains the types of an mmengine checkpoint and
``HistoryBuffer`` stops pickling its built-in statistics functions; without
CUDA (or MLU/NPU/MUSA) mmengine's dist init runs with ``nccl`` turned into
``gloo`` (with a warning) and ``torch.cuda.set_device`` skipped, and a CPU
module's DDP gets ``device_ids=None``; ``FormatCode`` (yapf) results are
memoised; ``Pretrained`` init of a ``MixVisionTransformer`` converts
SegFormer's original MiT names (mmseg's ``mit2mmseg.py``) and stops on
weights that do not fill the backbone. ``mmplugins.compat.remove_patches()``
undoes them.
"""
import importlib
import pkgutil

from .version import __version__

# sub-packages whose modules register classes; each module is imported once
_REGISTERING_PACKAGES = ('datasets', 'models', 'engine', 'evaluation',
                         'submission')


def _import_all():
    for pkg_name in _REGISTERING_PACKAGES:
        pkg = importlib.import_module(f'{__name__}.{pkg_name}')
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):
            if info.name.rsplit('.', 1)[-1].startswith('_'):
                continue
            importlib.import_module(info.name)


from . import compat  # noqa: E402

compat.apply_patches()
_import_all()

from .plugins import load_plugins  # noqa: E402

load_plugins()

__all__ = ['__version__']
