"""Shared fixtures. Tests run on CPU with few threads (2-core CI machine)."""
import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
os.environ.setdefault('OMP_NUM_THREADS', '2')
for _p in (osp.join(ROOT, 'tools'), osp.join(ROOT, 'tests')):
    if _p not in sys.path:
        sys.path.insert(0, _p)


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


@pytest.fixture(scope='session')
def python_exe():
    return sys.executable


@pytest.fixture(scope='session')
def seg_demo_root(tmp_path_factory):
    """A few-image instance of the demo layout at the configs' native size."""
    from mmplugins.datasets.demo.samsung_demo import make_samsung_demo
    root = str(tmp_path_factory.mktemp('samsung_demo_native'))
    make_samsung_demo(root, num_train_source=6, num_val_source=2,
                      num_train_target=6, num_val_target=3, num_test=1,
                      seed=0, num_workers=0)
    return root


@pytest.fixture(autouse=True)
def _isolate_default_scope():
    """Drop DefaultScope instances a test created (``init_default_scope`` or a
    Runner leave one behind, and mmengine's registries then build from that
    toolbox in every later test)."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in list(DefaultScope._instance_dict):
        if name not in before:
            del DefaultScope._instance_dict[name]
