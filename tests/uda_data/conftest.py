"""Fixtures of the UDA data tests (helpers: ``_uda_data_fixtures``)."""
import pytest
from _uda_data_fixtures import write_split


@pytest.fixture
def demo_root(tmp_path):
    """8 labelled source images, 5 unlabelled target images."""
    root = str(tmp_path / 'demo')
    write_split(root, 'train_source', 8)
    write_split(root, 'train_target', 5)
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch ~/.cache: the fallback cache goes to the tmp dir."""
    monkeypatch.setenv('MMPLUGINS_CACHE_DIR', str(tmp_path / 'user_cache'))


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """mmseg scope for building datasets/transforms, restored afterwards."""
    import mmplugins  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield
