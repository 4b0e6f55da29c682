"""Provenance of bench results and the DDP settings of ``make bench``
(fast: no model is built)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'bench'))

import _common  # noqa: E402
import run_all  # noqa: E402
import scaling_bench  # noqa: E402

KEYS = {'commit', 'dirty', 'command', 'machine', 'packages', 'date'}


def test_write_results_adds_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['bench/x.py', '--flag', '3'])
    path = _common.write_results('x', dict(value=1.5), ['# x', '', 'y'],
                                 str(tmp_path))
    data = json.loads(open(path).read())
    assert data['value'] == 1.5 and set(data['provenance']) >= KEYS
    p = data['provenance']
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    assert p['commit'] == head and isinstance(p['dirty'], bool)
    assert p['command'] == 'python bench/x.py --flag 3'
    assert p['machine']['cpus'] >= 1 and 'torch' in p['packages']
    assert (tmp_path / 'x.md').read_text() == '# x\n\ny\n'
    # a result that carries its own provenance keeps it
    _common.write_results('y', dict(provenance=dict(commit='abc')), [],
                          str(tmp_path))
    assert json.loads((tmp_path / 'y.json').read_text())['provenance'] == \
        dict(commit='abc')


def test_ddp_arguments():
    args = scaling_bench.parse_args([])
    assert (args.ddp_steps, args.ddp_warmup, args.ddp_total_threads) == \
        (20, 2, 2)
    for bad, msg in ((['--ddp-total-threads', '3'], 'even'),
                     (['--ddp-total-threads', '0'], 'even'),
                     (['--ddp-steps', '0'], 'ddp-steps'),
                     (['--ddp-warmup', '-1'], 'ddp-warmup')):
        with pytest.raises(ValueError, match=msg):
            scaling_bench.parse_args(bad)


def test_make_bench_settings():
    suite = run_all.suite('cpu')
    scaling = suite['scaling'][1]
    i = scaling.index('--ddp-steps')
    assert int(scaling[i + 1]) >= 20  # >= 20 timed steps after warm-up
    assert scaling[scaling.index('--ddp-total-threads') + 1] == '2'
    pipe = suite['data_pipeline'][1]
    assert pipe[pipe.index('--threads') + 1] == '1'
    # the suite's timeouts fit the 15 min budget only if the benches do;
    # the measured total is in bench/results/summary.json
    summary = json.load(open(osp.join(ROOT, 'bench', 'results',
                                      'summary.json')))
    assert summary['total_s'] <= 15 * 60
    assert set(summary['provenance']) >= KEYS


def test_ddp_summary_rows():
    def run(n, threads, sps):
        return dict(world_size=n, threads_per_process=threads,
                    samples_per_s=sps, timed_steps=20, weights_in_sync=True)
    ddp = dict(one_process=run(1, 2, 0.5), two_processes=run(2, 1, 1.5),
               one_process_same_threads_per_process=run(1, 1, 1.0),
               throughput_ratio=3.0, scaling_efficiency=1.5)
    rows = run_all.figures(dict(scaling=dict(lines=[], skipped=[],
                                             ddp=ddp)), 'cpu')
    assert rows[0][:2] == ['5. DDP 2-process / 1-process throughput',
                           '3.00x']
    assert 'over 20 timed steps, 1x2 vs 2x1 threads' in rows[0][4]
    assert rows[1][:2] == ['5. DDP 2 processes / 1 process, 1 thread each',
                           '1.50x']
