"""Issue #7, item 3: a kill while a checkpoint is being written never leaves
a truncated checkpoint that ``--resume`` picks up (AtomicCheckpointHook),
and a damaged latest checkpoint (e.g. written by the stock hook) is skipped
for the newest complete one."""
import os
import os.path as osp
import shutil

import pytest
import torch

from mmplugins.engine.hooks.atomic_checkpoint_hook import (
    atomic_write_text, checkpoint_is_complete, newest_complete_checkpoint)

HOOKS = [dict(type='ExactResumeHook')]
ITERS = 6


def test_checkpoint_is_complete(tmp_path):
    good = str(tmp_path / 'iter_2.pth')
    torch.save(dict(w=torch.arange(10000.)), good)
    assert checkpoint_is_complete(good) == (True, '')
    data = open(good, 'rb').read()
    for name, content in (('iter_4.pth', data[:len(data) // 2]),
                          ('iter_6.pth', b''),
                          ('iter_8.pth', data[:-10])):
        open(tmp_path / name, 'wb').write(content)
        ok, why = checkpoint_is_complete(str(tmp_path / name))
        assert not ok and why, name
    assert not checkpoint_is_complete(str(tmp_path / 'missing.pth'))[0]
    # one flipped byte inside the stored tensor: CRC error
    flipped = bytearray(data)
    pos = data.find(b'data/0') + 200
    flipped[pos] ^= 0xFF
    open(tmp_path / 'iter_3.pth', 'wb').write(bytes(flipped))
    assert not checkpoint_is_complete(str(tmp_path / 'iter_3.pth'))[0]
    assert newest_complete_checkpoint(str(tmp_path)) == good
    atomic_write_text(str(tmp_path / 'last_checkpoint'), good)
    assert open(tmp_path / 'last_checkpoint').read() == good
    assert [p for p in os.listdir(tmp_path) if 'tmp' in p] == []


@pytest.fixture(scope='module')
def cls_reference(rel_data, tmp_path_factory):
    import _runs as runs
    tmp = tmp_path_factory.mktemp('cls_ref')
    cfg = runs.write_config(runs.cls_config(rel_data['cls'], ITERS, HOOKS),
                            str(tmp / 'ref.py'))
    assert runs.train_forked(cfg, str(tmp / 'ref')) == 0
    return cfg, runs.losses(str(tmp / 'ref'))


def _cfg(runs, rel_data, path, hooks, ckpt_type='AtomicCheckpointHook',
         max_keep=1):
    cfg = runs.cls_config(rel_data['cls'], ITERS, hooks)
    cfg.default_hooks.checkpoint.type = ckpt_type
    cfg.default_hooks.checkpoint.max_keep_ckpts = max_keep
    return runs.write_config(cfg, path)


@pytest.mark.slow
def test_kill_during_save_keeps_previous(rel_data, runs, tmp_path,
                                         cls_reference):
    """SIGKILL half-way through writing iter_4.pth, max_keep_ckpts=1."""
    ref_cfg, ref = cls_reference
    kill = _cfg(runs, rel_data, str(tmp_path / 'kill.py'),
                HOOKS + [dict(type='FaultInjectionHook',
                              kill_during_save_at_iter=4)])
    wd = str(tmp_path / 'work')
    assert runs.train_forked(kill, wd) == -9
    files = sorted(os.listdir(wd))
    assert 'iter_4.pth' not in files  # never visible under its name
    tmps = [f for f in files if f.startswith('.iter_4.pth.tmp')]
    assert len(tmps) == 1  # the half-written temporary, ignored by resume
    assert not checkpoint_is_complete(osp.join(wd, tmps[0]))[0]
    latest = open(osp.join(wd, 'last_checkpoint')).read().strip()
    assert latest == osp.join(wd, 'iter_2.pth')
    assert checkpoint_is_complete(latest)[0]  # not deleted before the save
    assert runs.train_forked(ref_cfg, wd, resume=True) == 0, \
        runs.read_log(wd)
    resumed = runs.losses_per_run(wd)[-1]
    assert sorted(resumed) == list(range(3, ITERS + 1))
    assert resumed == {k: ref[k] for k in resumed}


@pytest.mark.slow
def test_stock_hook_loses_everything_atomic_resume_says_so(
        rel_data, runs, tmp_path):
    """The failure the atomic hook prevents: mmengine's CheckpointHook with
    max_keep_ckpts=1 deletes iter_2.pth *before* writing iter_4.pth; a
    kill in between leaves no usable checkpoint. Resume then fails with a
    message naming the files instead of loading a truncated one."""
    kill = _cfg(runs, rel_data, str(tmp_path / 'kill.py'),
                HOOKS + [dict(type='FaultInjectionHook',
                              kill_during_save_at_iter=4)],
                ckpt_type='CheckpointHook')
    wd = str(tmp_path / 'work')
    assert runs.train_forked(kill, wd) == -9
    assert not osp.exists(osp.join(wd, 'iter_2.pth'))
    assert not checkpoint_is_complete(osp.join(wd, 'iter_4.pth'))[0]
    resume = _cfg(runs, rel_data, str(tmp_path / 'resume.py'), HOOKS)
    assert runs.train_forked(resume, wd, resume=True) == 1
    log = runs.read_log(wd)
    assert 'AtomicCheckpointHook: the latest checkpoint' in log
    assert 'holds no other complete checkpoint' in log


@pytest.mark.slow
def test_truncated_latest_falls_back(rel_data, runs, tmp_path,
                                     cls_reference):
    ref_cfg, ref = cls_reference
    kill = _cfg(runs, rel_data, str(tmp_path / 'kill.py'),
                HOOKS + [dict(type='FaultInjectionHook', kill_after_iter=5)],
                max_keep=2)
    wd = str(tmp_path / 'work')
    assert runs.train_forked(kill, wd) == -9
    latest = osp.join(wd, 'iter_4.pth')
    data = open(latest, 'rb').read()
    open(latest, 'wb').write(data[:len(data) // 3])  # e.g. disk full
    assert runs.train_forked(ref_cfg, wd, resume=True) == 0, \
        runs.read_log(wd)
    log = runs.read_log(wd)
    assert f'resuming from {osp.join(wd, "iter_2.pth")} instead' in log
    resumed = runs.losses_per_run(wd)[-1]
    assert sorted(resumed) == list(range(3, ITERS + 1))
    assert resumed == {k: ref[k] for k in resumed}
    shutil.rmtree(wd)
