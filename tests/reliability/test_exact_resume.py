"""Issue #7, items 1 and 2: kill -9 at an arbitrary iteration, ``--resume``,
and the loss curve equals an uninterrupted run's bit for bit -- for the MIC
UDA segmentation config, the diet-sampler detection config and the
mask-label classification config (CPU, seed 0, deterministic=True).

Each family runs ``tools/train.py``'s main twice with the same seed: once
uninterrupted for 50 iterations, once SIGKILLed after iteration 30 (between
checkpoints) and resumed. Every logged loss of the second run -- before the
kill and after the resume, including the iterations trained twice -- must
equal the first run's exactly, which proves both reproducibility (same seed,
two processes, >= 30 identical iterations before the kill and all 50 in
total) and exact resume (student, teacher, optimizer, LR schedule, sampler
position, dataloader workers and RNG).
"""
import os.path as osp

import pytest
import torch

HOOKS = [dict(type='ExactResumeHook'), dict(type='NaNGuardHook')]

# family: (config length, checkpoint interval, kill after iteration)
#   det is epoch-based (3 iterations per epoch): 17 epochs = 51 iterations,
#   checkpoint every 2 epochs (6 iterations), killed in epoch 10
SETTINGS = dict(seg=(50, 8, 30), det=(17, 2, 29), cls=(50, 8, 30))


@pytest.mark.slow
@pytest.mark.parametrize('family', ['seg', 'det', 'cls'])
def test_kill_resume_equals_uninterrupted(family, rel_data, runs, tmp_path):
    length, interval, kill = SETTINGS[family]
    build = runs.BUILDERS[family]
    ref_cfg = runs.write_config(
        build(rel_data[family], length, HOOKS, ckpt_interval=interval),
        str(tmp_path / 'ref.py'))
    kill_cfg = runs.write_config(
        build(rel_data[family], length,
              HOOKS + [dict(type='FaultInjectionHook',
                            kill_after_iter=kill)],
              ckpt_interval=interval), str(tmp_path / 'kill.py'))
    ref_dir, res_dir = str(tmp_path / 'ref'), str(tmp_path / 'resumed')

    assert runs.train_forked(ref_cfg, ref_dir) == 0, runs.read_log(ref_dir)
    assert runs.train_forked(kill_cfg, res_dir) == -9  # SIGKILL
    ckpt = open(osp.join(res_dir, 'last_checkpoint')).read().strip()
    resumed_from = int(torch.load(ckpt, map_location='cpu',
                                  weights_only=True)['meta']['iter'])
    assert runs.train_forked(ref_cfg, res_dir, resume=True) == 0, \
        runs.read_log(res_dir)

    ref = runs.losses(ref_dir)
    before, after = runs.losses_per_run(res_dir)
    n_ref = max(ref)
    assert n_ref >= 50 and sorted(ref) == list(range(1, n_ref + 1))
    # the kill lost the iterations after the last checkpoint ...
    assert max(before) == kill - 1  # iteration `kill` died before logging
    assert resumed_from < kill - 1
    # ... and the resumed run redid exactly those, then went on to the end
    assert sorted(after) == list(range(resumed_from + 1, n_ref + 1))
    # bitwise: a float equality, not approx
    assert {k: ref[k] for k in before} == before
    assert {k: ref[k] for k in after} == after
    redone = sorted(set(before) & set(after))
    assert len(redone) >= 1 and all(before[k] == after[k] for k in redone)


def test_step_seed_streams_distinct():
    from mmplugins.engine.hooks.exact_resume_hook import step_seed
    seeds = {step_seed(s, r, e, b) for s in (0, 1) for r in range(4)
             for e in range(3) for b in range(50)}
    assert len(seeds) == 2 * 4 * 3 * 50  # no two batches share a stream
    assert step_seed(0, 0, 0, 7) == step_seed(0, 0, 0, 7)
    assert all(0 <= s < 2**32 for s in seeds)


@pytest.mark.slow
def test_resume_with_other_stream_refused(rel_data, runs, tmp_path):
    """A resume whose batch size differs would replay another data stream:
    refused with the differences named (strict=True)."""
    kill = runs.write_config(
        runs.cls_config(rel_data['cls'], 6,
                        HOOKS + [dict(type='FaultInjectionHook',
                                      kill_after_iter=3)]),
        str(tmp_path / 'kill.py'))
    wd = str(tmp_path / 'work')
    assert runs.train_forked(kill, wd) == -9
    other = runs.cls_config(rel_data['cls'], 6, HOOKS)
    other.train_dataloader.batch_size = 4
    other = runs.write_config(other, str(tmp_path / 'other.py'))
    assert runs.train_forked(other, wd, resume=True) == 1
    log = runs.read_log(wd)
    assert "ExactResumeHook: the data stream of the checkpoint differs " \
        "from this run (checkpoint, now): {'batch_size': (8, 4)}" in log


def _records(work_dir):
    """One ``{step: {key: value}}`` per run (timestamped folder), from the
    scalars the LoggerHook wrote."""
    import json
    import os
    res = []
    for run in sorted(d for d in os.listdir(work_dir)
                      if osp.isdir(osp.join(work_dir, d))):
        f = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        cur = {}
        if osp.isfile(f):
            for line in open(f):
                rec = json.loads(line)
                if 'step' in rec and 'loss' in rec:
                    cur[int(rec['step'])] = rec
        res.append(cur)
    return res


# family: (length, checkpoint interval, kill after iteration); det is
# epoch-based, 3 iterations per epoch
FRESH = dict(seg=(6, 2, 5), det=(4, 2, 8), cls=(6, 2, 5), hrda=(4, 2, 3))


@pytest.mark.slow
@pytest.mark.parametrize('family', ['seg', 'det', 'cls', 'hrda'])
def test_fresh_process_resume_every_loss_term(family, rel_data, runs,
                                              tmp_path):
    """`python tools/train.py CFG` and `... --resume` in fresh processes
    (no shared imports, no fork): an uninterrupted run, a run SIGKILLed
    between checkpoints, and its resume. Every logged loss term (each UDA
    term, each detection/classification loss, not only the total) and the
    UDA pseudo-weights equal the uninterrupted run's bitwise, before the
    kill (reproducibility across processes) and after the resume."""
    length, interval, kill = FRESH[family]
    data = 'seg' if family == 'hrda' else family  # HRDA: the seg demo data
    build = runs.BUILDERS[family]
    kw = dict(ckpt_interval=interval)
    if family in ('seg', 'hrda'):
        kw['num_workers'] = 0
    ref_cfg = runs.write_config(build(rel_data[data], length, HOOKS, **kw),
                                str(tmp_path / 'ref.py'))
    kill_cfg = runs.write_config(
        build(rel_data[data], length,
              HOOKS + [dict(type='FaultInjectionHook',
                            kill_after_iter=kill)], **kw),
        str(tmp_path / 'kill.py'))
    ref_dir, res_dir = str(tmp_path / 'ref'), str(tmp_path / 'resumed')
    p = runs.train(ref_cfg, ref_dir)
    assert p.returncode == 0, p.stderr[-3000:]
    p = runs.train(kill_cfg, res_dir)
    assert p.returncode == -9, p.stderr[-3000:]
    p = runs.train(ref_cfg, res_dir, resume=True)
    assert p.returncode == 0, p.stderr[-3000:]

    (ref, ), (before, after) = _records(ref_dir), _records(res_dir)
    n = max(ref)
    assert sorted(ref) == list(range(1, n + 1))
    assert max(before) == kill - 1 and min(after) <= kill <= n
    assert sorted(after)[-1] == n
    keys = {k for rec in ref.values() for k in rec
            if 'loss' in k or k.endswith('pseudo_weight')}
    assert len(keys) >= 3, keys  # the terms, not only the total
    for part in (before, after):
        for step, rec in part.items():
            for k in keys:
                assert rec.get(k) == ref[step].get(k), (family, step, k)
    if family == 'hrda':
        # the EMA teacher (of the whole HRDA model: both scales' head and
        # the scale attention) ends equal to the uninterrupted run's
        last = [torch.load(open(osp.join(d, 'last_checkpoint')).read().strip(),
                           map_location='cpu', weights_only=True)['state_dict']
                for d in (ref_dir, res_dir)]
        teacher = [k for k in last[0] if k.startswith('teacher.')]
        assert any('scale_attention' in k for k in teacher)
        for k in teacher:
            assert torch.equal(last[0][k], last[1][k]), k


class _Draws:
    """A dataset whose items are draws of torch, numpy and random, made
    when the item is loaded (num_workers=0: in the main process, after
    the hook reseeded)."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        import random

        import numpy as np
        return torch.tensor([torch.rand(()).item(), np.random.rand(),
                             random.random()])


def _expected(seed, rank, epoch, batch):
    """The draws of a fresh process seeded with the batch's step_seed."""
    import random

    import numpy as np
    from mmplugins.engine.hooks.exact_resume_hook import step_seed
    s = step_seed(seed, rank, epoch, batch)
    return torch.tensor([
        torch.rand((), generator=torch.Generator().manual_seed(s)).item(),
        np.random.RandomState(s).rand(), random.Random(s).random()])


def test_every_batch_gets_its_own_seed():
    """The iterator wrappers reseed before each batch with step_seed of
    its (epoch, batch) position: batch b's draws are those of a process
    seeded with step_seed(seed, rank, epoch, b), and no two batches (of one
    epoch or of two epochs) share them."""
    from types import SimpleNamespace

    from torch.utils.data import DataLoader

    from mmplugins.engine.hooks.exact_resume_hook import (ExactResumeHook,
                                                          _ReseedingIterator,
                                                          _ReseedingLoader)
    loader = DataLoader(_Draws(), batch_size=1, shuffle=False)
    it = _ReseedingIterator(iter(loader), seed=7, rank=0)
    got = [next(it)[0] for _ in range(4)]
    for b, g in enumerate(got):
        assert torch.allclose(g.double(), _expected(7, 0, 0, b).double()), b
    assert len({tuple(g.tolist()) for g in got}) == 4
    hook = ExactResumeHook()
    runner = SimpleNamespace(seed=7, epoch=0)
    hook.before_run(runner)
    epochs = []
    for epoch in (0, 1):
        runner.epoch = epoch
        draws = [x[0] for x in _ReseedingLoader(loader, hook)]
        for b, g in enumerate(draws):
            assert torch.allclose(g.double(),
                                  _expected(7, 0, epoch, b).double())
        epochs.append(draws)
    flat = {tuple(g.tolist()) for e in epochs for g in e}
    assert len(flat) == 12
