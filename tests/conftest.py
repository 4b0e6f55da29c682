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
