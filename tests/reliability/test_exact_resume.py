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
