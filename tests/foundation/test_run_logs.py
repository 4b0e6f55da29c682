"""mmplugins.utils.run_logs: what tools/demo.py and the bench scripts read
back from a run's vis_data/scalars.json."""
import json

import pytest

from mmplugins.utils.run_logs import (last_row, last_value, read_scalars,
                                      scalar_files, train_rows)


def _write(run_dir, rows):
    d = run_dir / 'vis_data'
    d.mkdir(parents=True)
    (d / 'scalars.json').write_text(
        ''.join(json.dumps(r) + '\n' for r in rows) + '\n')


@pytest.fixture
def resumed(tmp_path):
    """A run resumed once: the second run dir continues at step 30."""
    _write(tmp_path / '20260101_000000', [
        dict(lr=1e-3, loss=2.0, time=0.5, step=10),
        dict(lr=1e-3, loss=1.5, time=0.4, step=20, pseudo_weight=0.1),
        dict(mIoU=10.0, time=0.05, step=20)])
    _write(tmp_path / '20260101_010000', [
        dict(lr=5e-4, loss=1.0, time=0.3, step=30, pseudo_weight=0.3),
        dict(mIoU=12.5, time=0.05, step=30),
        dict(lr=1e-4, loss=0.9, time=0.2, step=40)])
    (tmp_path / 'not_a_run').mkdir()
    return tmp_path


def test_all_run_dirs_in_order_or_newest_only(resumed):
    assert [r['step'] for r in read_scalars(str(resumed))] == [
        10, 20, 20, 30, 30, 40]
    newest = read_scalars(str(resumed), newest_only=True)
    assert [r['step'] for r in newest] == [30, 30, 40]
    assert scalar_files(str(resumed), newest_only=True)[0].startswith(
        str(resumed / '20260101_010000'))


def test_last_row_and_value_at_the_highest_step(resumed):
    rows = read_scalars(str(resumed))
    assert last_row(rows, 'mIoU') == dict(mIoU=12.5, time=0.05, step=30)
    assert last_value(rows, 'pseudo_weight') == 0.3
    assert last_value(rows, 'loss') == 0.9
    # a tie on step: the later row wins
    tie = [dict(step=5, a=1), dict(step=5, a=2), dict(step=4, a=3)]
    assert last_value(tie, 'a') == 2


def test_train_rows_leave_validation_out(resumed):
    times = [r['time'] for r in train_rows(read_scalars(str(resumed)))]
    assert times == [0.5, 0.4, 0.3, 0.2]


def test_missing_things_are_named(tmp_path, resumed):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'empty')):
        (tmp_path / 'empty').mkdir()
        read_scalars(str(tmp_path / 'empty'))
    rows = read_scalars(str(resumed))
    with pytest.raises(KeyError, match='no `mAcc` logged in WD'):
        last_row(rows, 'mAcc', source='WD')
    assert last_value(rows, 'mAcc', default=None) is None
