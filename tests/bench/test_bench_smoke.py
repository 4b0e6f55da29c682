"""Smoke test of the bench helpers at tiny sizes (schema and finite ratios).

No timing assertions: the figures themselves come from ``make bench``.
"""
import json
import math
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'bench'))


def _finite_positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_bench_helpers_tiny(tmp_path):
    import _common
    import run_all
    import uda_step_bench as usb

    # timing helpers: round-robin medians, one entry per function and rep
    calls = []
    timed = _common.interleaved_medians(
        {'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')},
        reps=3, warmup=1)
    assert calls == ['a', 'b'] + ['a', 'b'] * 3  # warm-up, then interleaved
    assert set(timed) == {'a', 'b'}
    assert all(len(v['times_s']) == 3 and v['median_s'] >= 0
               for v in timed.values())
    with pytest.raises(ValueError, match='reps'):
        _common.interleaved_medians({'a': lambda: None}, reps=0)
    with _common.RSSSampler() as rss:
        blob = bytearray(32 * 2**20)  # noqa: F841  (32 MiB resident)
    assert rss.peak_mb >= _common.current_rss_mb() - 1 > 0

    # figure 1 at a tiny crop, in-process (no memory subprocesses)
    out = tmp_path / 'results'
    res = usb.main(['--crop', '32', '64', '--batch-size', '1', '--reps',
                    '1', '--warmup', '1', '--no-memory', '--threads', '1',
                    '--device', 'cpu', '--out-dir', str(out)])
    on_disk = json.loads((out / 'uda_step.json').read_text())
    assert on_disk['overhead_ratio'] == res['overhead_ratio']
    assert set(on_disk['provenance']) >= {'commit', 'dirty', 'command',
                                          'machine', 'packages', 'date'}
    assert (out / 'uda_step.md').read_text().startswith('# UDA step')
    passes = [k for k in res['timings'] if k.startswith(('teacher',
                                                         'student'))]
    assert len(passes) == 5  # teacher + source, dist, mixed, masked
    assert _finite_positive(res['overhead_ratio'])
    assert _finite_positive(res['mic_vs_source_only_time'])
    assert res['pass_sum_s'] == pytest.approx(
        sum(res['timings'][k] for k in passes), rel=1e-3, abs=1e-4)
    assert res['crop'] == [32, 64] and res['batch_size'] == 1
    assert set(res['other_pieces_s']) >= {'optimizer step', 'EMA update'}

    # the memory probe of one variant (what the subprocess runs)
    mem = usb.measure_memory('b0', (32, 64), 1, usb.SOURCE_ONLY, 'cpu',
                             False, steps=1)
    assert mem['kind'] == 'rss' and mem['peak_mb'] >= mem['before_step_mb']

    # the summary row built from that JSON
    rows = run_all.figures({'uda_step': on_disk}, 'cpu')
    assert rows[0][0].startswith('1.') and rows[0][1].endswith('x')
    assert math.isfinite(float(rows[0][1][:-1]))
    # bad bench names are refused before anything runs
    with pytest.raises(KeyError, match='unknown bench'):
        run_all.main(['--only', 'nope', '--out-dir', str(tmp_path)])
