"""Fixtures of the detection (diet recipe) tests."""
import os.path as osp

import pytest
from _diet_fixtures import REFERENCE_FIXTURE, CatIdsDataset


@pytest.fixture
def reference_dataset():
    return CatIdsDataset([ids for ids, _, _ in REFERENCE_FIXTURE])


@pytest.fixture(scope='session')
def driver_demo_small(tmp_path_factory):
    """A small driver demo dataset (48 train / 8 val images, 192 px)."""
    from mmplugins.datasets.demo.driver_demo import make_driver_demo
    out = str(tmp_path_factory.mktemp('driver_demo'))
    summary = make_driver_demo(out, num_train=48, num_val=8, size=192,
                               seed=0)
    summary['data_root'] = out + osp.sep
    return summary
