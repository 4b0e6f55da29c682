"""Run a bench on a machine that has torch but not the OpenMMLab stack.

Used for the GPU figures on a lent machine without internet:
``mmplugins/__init__`` imports every module (mmdet, mmpretrain,
albumentations, ...), but the model benches need only the UDA model pieces.
This launcher

* puts ``$MMPLUGINS_CARRY/site`` (pure-Python copies of mmengine, mmcv
  without its compiled ``_ext``, mmseg) first on ``sys.path`` and
  ``$MMPLUGINS_CARRY/site_fallback`` (their pure-Python dependencies) last,
  so the machine's own packages win there;
* stubs mmcv's compiled ops and a few packages mmseg imports at module level
  but MiT / DAFormer training never calls (scipy, matplotlib, ...), when
  they are missing;
* imports only the UDA model modules of mmplugins through a stub package,
  and runs the given script (its memory subprocesses go through this
  launcher too, see ``_common.run_json_subprocess``).

Example (``MMPLUGINS_CARRY`` defaults to ``data/gpu_carry``)::

    python bench/_gpu_shim.py bench/uda_step_bench.py --backbone b5 \\
        --crop 512 512 --amp --device cuda
"""
import importlib.machinery
import os
import os.path as osp
import runpy
import sys
import types

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CARRY = os.environ.get('MMPLUGINS_CARRY', osp.join(ROOT, 'data', 'gpu_carry'))
sys.path.insert(0, osp.join(CARRY, 'site'))
sys.path.insert(0, ROOT)
sys.path.append(osp.join(CARRY, 'site_fallback'))
os.environ['MMPLUGINS_BENCH_LAUNCHER'] = osp.abspath(__file__)


class _Stub(types.ModuleType):
    """A module whose every attribute is a do-nothing class."""

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return type(name, (), {'__init__': lambda *a, **k: None})


def _stub(name):
    module = _Stub(name)
    module.__path__ = []
    # pkgutil.find_loader (mmcv's ops check) needs a spec without a loader
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules[name] = module


def _stub_if_missing(*names):
    for name in names:
        try:
            __import__(name)
        except Exception:
            _stub(name)


try:
    import mmcv._ext  # noqa: F401
except Exception:
    _stub('mmcv._ext')
    _stub('mmcv.ops')
_stub_if_missing('scipy', 'scipy.optimize', 'scipy.ndimage', 'ftfy', 'regex',
                 'matplotlib', 'matplotlib.pyplot', 'prettytable', 'einops')
_pkg = types.ModuleType('mmplugins')
_pkg.__path__ = [osp.join(ROOT, 'mmplugins')]
sys.modules['mmplugins'] = _pkg
import mmplugins.models.decode_heads.daformer_head  # noqa: E402,F401
import mmplugins.models.uda.uda_data_preprocessor  # noqa: E402,F401
import mmplugins.models.uda.uda_optim_constructor  # noqa: E402,F401
import mmplugins.models.uda.uda_segmentor  # noqa: E402,F401

if __name__ == '__main__':
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, osp.dirname(osp.abspath(script)))
    runpy.run_path(script, run_name='__main__')
