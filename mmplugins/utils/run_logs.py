"""Read back what a finished mmengine run logged.

mmengine's ``LocalVisBackend`` writes one JSON object per logging step to
``<work_dir>/<timestamp>/vis_data/scalars.json``: training rows (``step``,
``lr``, the losses, ``time``, ...) and validation rows (``step`` and the
metrics, e.g. ``mIoU``). A resumed run writes a second ``<timestamp>`` dir
whose steps continue the first one's.

``tools/demo.py`` and the bench scripts read their figures through these
helpers, so "the final mIoU" means the same thing everywhere: the value
logged at the highest step (later rows win ties).
"""
import glob
import json
import os.path as osp
from typing import Any, Dict, List

_MISSING = object()


def scalar_files(work_dir: str, newest_only: bool = False) -> List[str]:
    """The run dirs' ``vis_data/scalars.json`` of ``work_dir``, oldest
    first (run dirs are named by their start time); only the newest one
    with ``newest_only``. Raises ``FileNotFoundError`` naming ``work_dir``
    when there is none."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not paths:
        raise FileNotFoundError(
            f'no <run>/vis_data/scalars.json in {work_dir} (a finished '
            'mmengine run with LocalVisBackend writes one)')
    return paths[-1:] if newest_only else paths


def read_scalars(work_dir: str,
                 newest_only: bool = False) -> List[Dict[str, Any]]:
    """Every logged row of ``work_dir`` (all run dirs in order, so a
    resumed run's rows follow the first run's; or only the newest run
    dir)."""
    rows = []
    for path in scalar_files(work_dir, newest_only):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def last_row(rows: List[Dict[str, Any]], key: str,
             source: str = '') -> Dict[str, Any]:
    """The row with ``key`` at the highest ``step`` (the later row on a
    tie). Raises ``KeyError`` naming the key and ``source``."""
    best = None
    for row in rows:
        if key in row and (best is None
                           or row.get('step', 0) >= best.get('step', 0)):
            best = row
    if best is None:
        raise KeyError(f'no `{key}` logged'
                       + (f' in {source}' if source else ''))
    return best


def mean_window(config_file: str, key: str) -> int:
    """Iterations a logged scalar ``key`` averages over in a run of
    ``config_file``: the window of the config's log processor (built as the
    Runner builds it) when its ``mean_pattern`` matches the key, else 1
    (the logged value is the current iteration's)."""
    from mmengine.config import Config
    from mmengine.registry import LOG_PROCESSORS
    lp = LOG_PROCESSORS.build(dict(
        dict(type='LogProcessor'),
        **Config.fromfile(config_file).get('log_processor', {})))
    if lp.mean_pattern.search(key) is None:
        return 1
    return int(lp.window_size)


def pseudo_weight_label(window: int) -> str:
    """The column name of a logged ``pseudo_weight`` read at the end of a
    run: a mean over the last ``window`` iterations, or the last
    iteration's value."""
    return ('pseudo_weight, last iteration' if window <= 1 else
            f'pseudo_weight, mean of last {window} it.')


def last_value(rows: List[Dict[str, Any]], key: str, default: Any = _MISSING,
               source: str = '') -> Any:
    """``last_row(rows, key)[key]``; ``default`` when given and nothing
    logged ``key``."""
    try:
        return last_row(rows, key, source)[key]
    except KeyError:
        if default is _MISSING:
            raise
        return default


def train_rows(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The training rows: those with ``time`` and ``lr``. Validation rows
    carry a ``time`` too (the val loop's per-batch time) beside their
    metrics, but no ``lr``."""
    return [r for r in rows if 'time' in r and 'lr' in r]
