"""Fixtures of the classification tests: a small mask demo dataset."""
import pytest


@pytest.fixture(scope='session')
def mask_demo_root(tmp_path_factory):
    """60 persons x 7 images (32 px) + 3 eval persons, seed 0."""
    from mmplugins.datasets.demo.mask_demo import make_mask_demo
    root = tmp_path_factory.mktemp('mask_demo')
    make_mask_demo(str(root), num_persons=60, eval_persons=3, size=32,
                   seed=0)
    return str(root)
