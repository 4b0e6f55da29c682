"""Issue #7, item 6: DDP correctness.

* Every sampler, simulated at world sizes 1-4 (``get_dist_info`` patched in
  the sampler's module, as each rank would see it): the ranks' shares are
  disjoint and together are exactly the draw the sampler intends (one
  permutation, one epoch part, one weighted draw), with equal lengths.
* A real 2-process (gloo) run of ``UDASegmentor`` under
  ``MMSeparateDistributedDataParallel``: after N iterations the EMA teacher
  (and the student) are bitwise identical on both ranks.
"""
import itertools
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

import mmengine.dataset.sampler as mm_sampler
import mmengine.dist as mm_dist
from mmplugins.datasets.samplers import class_balanced_sampler as cb_mod
from mmplugins.datasets.samplers import diet_sampler as diet_mod
from mmplugins.datasets.samplers import epoch_parts_sampler as ep_mod
from mmplugins.datasets.samplers.class_balanced_sampler import \
    ClassBalancedSampler
from mmplugins.datasets.samplers.diet_sampler import DietSampler
from mmplugins.datasets.samplers.epoch_parts_sampler import (
    EpochPartsSampler, epoch_draw)

CLASSES = ('eye_opened', 'eye_closed', 'mouth_opened', 'phone')


class TinyDataset:
    """``n`` items; item i has categories by a fixed pattern and a class
    label i % 3 (unbalanced: twice as many 0s)."""

    def __init__(self, n):
        self.n = n
        self.metainfo = dict(classes=CLASSES)

    def __len__(self):
        return self.n

    def get_cat_ids(self, i):
        return [c for c in range(len(CLASSES)) if (i * 7 + c) % (c + 2) == 0]

    def get_data_info(self, i):
        return dict(gt_label=0 if i % 3 == 2 else i % 3)


def _at_rank(monkeypatch, rank, world):
    fn = lambda *a, **k: (rank, world)  # noqa: E731
    for mod in (mm_sampler, ep_mod, cb_mod, mm_dist):
        monkeypatch.setattr(mod, 'get_dist_info', fn)
    # DietSampler compares its subset across ranks by a broadcast; with
    # simulated ranks there is nothing to broadcast from
    monkeypatch.setattr(diet_mod, 'broadcast_object_list', lambda obj,
                        src=0: None)


def _shares(monkeypatch, world, make, take):
    shares = []
    for rank in range(world):
        _at_rank(monkeypatch, rank, world)
        shares.append(list(take(make())))
    return shares


def _assert_partition(shares, draw):
    world = len(shares)
    assert len({len(s) for s in shares}) == 1, 'unequal rank lengths'
    # rank r holds positions r, r + world, ... of the draw: interleaving the
    # shares gives the draw back (so no item is lost or read twice)
    inter = [x for group in zip(*shares) for x in group]
    assert inter == list(draw[:len(inter)])
    assert len(inter) == len(draw) - len(draw) % world or \
        len(inter) == len(draw)


@pytest.mark.parametrize('world', [1, 2, 3, 4])
@pytest.mark.parametrize('n', [24, 25])
def test_default_sampler(monkeypatch, world, n):
    ds = TinyDataset(n)
    shares = _shares(monkeypatch, world,
                     lambda: mm_sampler.DefaultSampler(ds, shuffle=True,
                                                       seed=3),
                     iter)
    g = torch.Generator()
    g.manual_seed(3)
    perm = torch.randperm(n, generator=g).tolist()
    total = -(-n // world) * world
    padded = (perm * 2)[:total]  # mmengine pads by repeating the start
    _assert_partition(shares, padded)
    flat = sum(shares, [])
    assert set(flat) == set(range(n))
    assert len(flat) - len(set(flat)) == total - n  # only the padding


@pytest.mark.parametrize('world', [1, 2, 3, 4])
def test_infinite_sampler(monkeypatch, world):
    ds = TinyDataset(12)
    k = 30  # spans three passes over the data
    shares = _shares(monkeypatch, world,
                     lambda: mm_sampler.InfiniteSampler(ds, shuffle=True,
                                                        seed=5),
                     lambda s: itertools.islice(iter(s), k))
    _at_rank(monkeypatch, 0, 1)
    single = list(itertools.islice(iter(
        mm_sampler.InfiniteSampler(ds, shuffle=True, seed=5)), k * world))
    _assert_partition(shares, single)


@pytest.mark.parametrize('world', [1, 2, 3, 4])
@pytest.mark.parametrize('epoch', [0, 1, 2])
def test_epoch_parts_sampler(monkeypatch, world, epoch):
    ds = TinyDataset(50)

    def make():
        s = EpochPartsSampler(ds, epoch_parts=3, seed=7)
        s.set_epoch(epoch)
        return s

    shares = _shares(monkeypatch, world, make, iter)
    draw = epoch_draw(50, 3, epoch, 7)
    _assert_partition(shares, draw)
    assert len(set(sum(shares, []))) == len(sum(shares, []))


@pytest.mark.parametrize('world', [1, 2, 3, 4])
def test_diet_sampler(monkeypatch, world):
    ds = TinyDataset(60)
    rules = [dict(any_of=['phone']), dict(all_of=['eye_closed']),
             dict(any_of=['mouth_opened'], keep_every=2)]

    def make():
        s = DietSampler(ds, rules=rules, epoch_parts=2, seed=1,
                        verbose=False)
        s.set_epoch(1)
        return s

    shares = _shares(monkeypatch, world, make, iter)
    _at_rank(monkeypatch, 0, 1)
    ref = make()
    subset = ref.selection.indices
    draw = subset[epoch_draw(len(subset), 2, 1, 1)]
    _assert_partition(shares, draw)
    flat = sum(shares, [])
    assert len(set(flat)) == len(flat) and set(flat) <= set(subset.tolist())


@pytest.mark.parametrize('world', [1, 2, 3, 4])
def test_class_balanced_sampler(monkeypatch, world):
    ds = TinyDataset(40)

    def make():
        s = ClassBalancedSampler(ds, seed=2, num_samples=48)
        s.set_epoch(3)
        return s

    shares = _shares(monkeypatch, world, make, iter)
    _at_rank(monkeypatch, 0, 1)
    draw = make().draw().tolist()  # 48 is divisible by 1..4
    _assert_partition(shares, draw)
    assert sum(len(s) for s in shares) == 48


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch_two_ranks(runs, cfg, cfg_file):
    """Write ``cfg`` to ``cfg_file``, run ``_ddp_teacher_worker.py`` on it
    with 2 processes (``torch.distributed.run``, 1 thread each), assert it
    succeeded; returns (the ranks' JSON records, the console log)."""
    cfg_path = runs.write_config(cfg, str(cfg_file))
    out = str(cfg_file.parent / 'out')
    env = dict(os.environ, OMP_NUM_THREADS='1', MASTER_ADDR='127.0.0.1')
    worker = osp.join(osp.dirname(__file__), '_ddp_teacher_worker.py')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_port', str(_free_port()), worker, cfg_path, out],
        cwd=runs.REPO, env=env, capture_output=True, text=True, timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    res = []
    for r in (0, 1):
        with open(osp.join(out, f'rank{r}.json')) as f:
            res.append(json.load(f))
    return res, log


@pytest.mark.slow
@pytest.mark.parametrize('family', ['seg', 'hrda'])
def test_teacher_identical_across_ranks(family, rel_data, runs, tmp_path):
    """2 processes, gloo, 5 UDA iterations: the teacher's (and the
    student's) parameters are bitwise equal on both ranks, and the teacher
    moved. BN running statistics are rank-local: the config wraps with
    ``broadcast_buffers=False`` (as mmseg), each rank normalises its own
    batch, and checkpoints store rank 0's."""
    cfg = runs.BUILDERS[family](rel_data['seg'], 5, [], ckpt_interval=100,
                                num_workers=0)
    res, _ = _launch_two_ranks(runs, cfg, tmp_path / 'ddp.py')
    assert res[0]['iters'] == res[1]['iters'] == 5
    assert res[0]['teacher'] == res[1]['teacher']
    assert res[0]['student'] == res[1]['student']
    assert res[0]['teacher'] != res[0]['teacher_init']
    # ... which is why the buffers differ: the ranks saw different batches
    assert res[0]['teacher_buffers'] != res[1]['teacher_buffers']


@pytest.mark.slow
def test_nan_on_one_rank_all_ranks_skip(rel_data, runs, tmp_path):
    """2 processes, 5 UDA iterations, NaN inputs at iteration 3 on rank 1
    only, NaNGuardHook(action='skip'), and the config asks for nccl on this
    CUDA-less machine: the run trains on gloo (a WARNING says so), both
    ranks skip iteration 3 (agreed before any backward: no hang), the
    student, teacher and UDA counter after it equal those after iteration
    2 on both ranks, and the ranks stay bitwise identical."""
    hooks = [dict(type='NaNGuardHook', action='skip'),
             dict(type='FaultInjectionHook', nan_at_iter=3, nan_rank=1)]
    cfg = runs.seg_config(rel_data['seg'], 5, hooks, ckpt_interval=100,
                          num_workers=0)
    cfg.env_cfg.dist_cfg = dict(backend='nccl')
    res, log = _launch_two_ranks(runs, cfg, tmp_path / 'ddp_nan.py')
    if not torch.cuda.is_available():
        assert "dist backend 'nccl' was requested but CUDA is not " \
            "available; using 'gloo' instead" in log
    for r in res:
        h = {e['iter']: e for e in r['history']}
        assert r['iters'] == 5 and sorted(h) == [1, 2, 3, 4, 5]
        assert [h[i]['skipped'] for i in (2, 3, 5)] == [0, 1, 1]
        for key in ('teacher', 'student', 'local_iter'):
            assert h[3][key] == h[2][key], key  # iteration 3 left no trace
            assert h[4][key] != h[3][key], key  # and training went on
        assert h[5]['local_iter'] == 4
    assert res[0]['history'] == res[1]['history']
    # rank 0 (whose console the Runner shows) followed rank 1's NaN
    assert 'NaNGuardHook: non-finite loss on another rank at iteration 3' \
        in log
