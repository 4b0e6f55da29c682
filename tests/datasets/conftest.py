"""A small demo dataset, made once per session (6 images a split, 64x128)."""
import pytest

SMALL = dict(num_train_source=6, num_val_source=6, num_train_target=6,
             num_val_target=6, num_test=6, height=64, width=128, seed=3)


@pytest.fixture(scope='session')
def small_demo(tmp_path_factory):
    from mmplugins.datasets.demo.samsung_demo import make_samsung_demo
    root = str(tmp_path_factory.mktemp('samsung_demo'))
    summary = make_samsung_demo(root, num_workers=0, **SMALL)
    return root, summary
