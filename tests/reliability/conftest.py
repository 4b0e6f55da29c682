"""Fixtures of the reliability tests: tiny demo data of the three task
families, written once per session, and a pre-imported stack so that the
training runs (forked ``tools/train.py`` mains) start fast."""
import pytest

import _runs


@pytest.fixture(scope='session')
def rel_data(tmp_path_factory):
    _runs.prewarm()
    return _runs.make_data(str(tmp_path_factory.mktemp('reliability_data')))


@pytest.fixture
def runs():
    return _runs
