"""A real 2-process (gloo) run of the samplers: disjoint, equal-length rank
shares that together form the epoch draw; identical seeds and subsets."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
from _diet_fixtures import REFERENCE_SUBSET

from mmplugins.datasets.samplers.epoch_parts_sampler import epoch_draw


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path):
    worker = osp.join(osp.dirname(osp.abspath(__file__)),
                      '_ddp_sampler_worker.py')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
           '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
           '--master_port', str(_free_port()), worker, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.load(open(tmp_path / f'rank{r}.json')) for r in (0, 1))
    assert (r0['world_size'], r1['world_size']) == (2, 2)
    # seed=None is synced across ranks, the subset computed identically
    assert r0['seed'] == r1['seed'] and r0['diet_seed'] == r1['diet_seed']
    assert r0['subset'] == r1['subset'] == REFERENCE_SUBSET
    # diet: 8 images, epoch_parts=2 -> 4 per epoch -> 2 per rank
    assert r0['diet_len'] == r1['diet_len'] == 2
    # standalone: 101 // 4 = 25 per epoch -> 12 per rank (1 dropped)
    assert r0['parts_len'] == r1['parts_len'] == 12
    subset = np.array(REFERENCE_SUBSET)
    for epoch in range(3):
        for key, seed, n, parts, pool in (
                ('diet', r0['diet_seed'], 8, 2, subset),
                ('parts', r0['seed'], 101, 4, np.arange(101))):
            a, b = r0[key][epoch], r1[key][epoch]
            assert len(a) == len(b) == (n // parts) // 2
            assert not set(a) & set(b)
            draw = pool[epoch_draw(n, parts, epoch, seed)]
            merged = [x for pair in zip(a, b) for x in pair]
            assert merged == draw[:len(merged)].tolist()
        assert r0['parts'][epoch] != r0['parts'][(epoch + 1) % 3]
    assert r0['mismatch_error'] is None
    assert 'the diet subset differs between ranks' in r1['mismatch_error']
