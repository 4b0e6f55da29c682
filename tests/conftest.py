"""Shared fixtures. Tests run on CPU with few threads (2-core CI machine)."""
import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
os.environ.setdefault('OMP_NUM_THREADS', '2')
if osp.join(ROOT, 'tools') not in sys.path:
    sys.path.insert(0, osp.join(ROOT, 'tools'))


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


def seg_cfg_options(data_root, max_iters=2, **extra):
    """--cfg-options for a short run of a seg config on ``data_root``."""
    opts = {
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': max_iters,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': max_iters,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
    }
    opts.update(extra)
    return opts


def set_data_root(cfg, root):
    """Point every dataset (and DualBranchAug) of a seg config at ``root``."""
    def visit(node):
        if isinstance(node, dict):
            if 'data_root' in node:
                node['data_root'] = root
            for v in node.values():
                visit(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                visit(v)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if key in cfg:
            visit(cfg[key])
    cfg.data_root = root
    return cfg
