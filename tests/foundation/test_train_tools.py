"""tools/train.py + tools/test.py through the real Runner on demo data.

Runs in a temporary working directory whose ``data/samsung_demo`` points at a
few-image demo set, so the shipped configs run unchanged.
"""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch

from _testutils import ROOT

pytestmark = pytest.mark.slow


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    env.pop('MMPLUGINS_NO_PLUGINS', None)
    return env


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, seg_demo_root):
    ws = tmp_path_factory.mktemp('ws')
    os.makedirs(ws / 'data')
    os.symlink(seg_demo_root, ws / 'data' / 'samsung_demo')
    return ws


def _opts(**kw):
    base = {
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'default_hooks.logger.interval': 1,
    }
    base.update(kw)
    return [f'{k}={v}' for k, v in base.items()]


def run_tool(ws, *args, timeout=900):
    out = subprocess.run([sys.executable, *args], cwd=ws, env=_env(),
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (out.stdout[-3000:] + out.stderr[-5000:])
    return out


def _scalars(work_dir):
    rows = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


@pytest.fixture(scope='module')
def source_only_run(workspace):
    wd = str(workspace / 'work_dirs' / 'source_only')
    run_tool(workspace, osp.join(ROOT, 'tools', 'train.py'),
             osp.join(ROOT, 'configs', 'source_only.py'), '--work-dir', wd,
             '--cfg-options',
             *_opts(**{'train_cfg.max_iters': 4, 'train_cfg.val_interval': 4,
                       'default_hooks.checkpoint.interval': 2}))
    return wd


def test_train_writes_config_checkpoint_log_and_tensorboard(source_only_run):
    wd = source_only_run
    assert osp.isfile(osp.join(wd, 'source_only.py'))  # dumped config
    for it in (2, 4):
        assert osp.isfile(osp.join(wd, f'iter_{it}.pth'))
    logs = glob.glob(osp.join(wd, '*', '*.log'))
    assert logs and 'Iter(train) [4/4]' in open(logs[0]).read()
    assert 'eta:' in open(logs[0]).read()
    rows = _scalars(wd)
    train = [r for r in rows if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in train)
    assert any('mIoU' in r for r in rows)  # validation on the target
    # the TensorBoard event file holds the loss scalar
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    events = glob.glob(osp.join(wd, '*', 'vis_data', 'events.out.tfevents*'))
    assert events
    acc = EventAccumulator(osp.dirname(events[0]))
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert 'loss' in tags and 'mIoU' in tags
    assert [e.step for e in acc.Scalars('loss')] == [1, 2, 3, 4]


def test_resume_continues_from_saved_iteration(workspace, source_only_run):
    wd = source_only_run
    ckpt = torch.load(osp.join(wd, 'iter_4.pth'), map_location='cpu',
                      weights_only=True)
    out = run_tool(workspace, osp.join(ROOT, 'tools', 'train.py'),
                   osp.join(ROOT, 'configs', 'source_only.py'), '--work-dir',
                   wd, '--resume', '--cfg-options',
                   *_opts(**{'train_cfg.max_iters': 6,
                             'train_cfg.val_interval': 100,
                             'default_hooks.checkpoint.interval': 100}))
    log = out.stdout + out.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [1/6]' not in log
    # identical optimizer state: the resumed run's first step starts from the
    # saved AdamW moments, so its step count continues from 4
    final = torch.load(osp.join(wd, 'iter_6.pth'), map_location='cpu',
                       weights_only=True)
    steps_saved = {v['step'].item() for v in
                   ckpt['optimizer']['state'].values()}
    steps_final = {v['step'].item() for v in
                   final['optimizer']['state'].values()}
    assert steps_saved == {4.0} and steps_final == {6.0}


def test_test_tool_evaluates_checkpoint_and_saves_images(workspace,
                                                          source_only_run):
    wd = source_only_run
    out = run_tool(workspace, osp.join(ROOT, 'tools', 'test.py'),
                   osp.join(ROOT, 'configs', 'source_only.py'),
                   osp.join(wd, 'iter_4.pth'), '--work-dir', wd,
                   '--show-dir', 'shown', '--cfg-options', *_opts())
    assert 'mIoU' in out.stdout + out.stderr
    shown = glob.glob(osp.join(wd, 'shown', '**', '*.png'), recursive=True)
    assert len(shown) == 3  # every one of the 3 target val images


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_uda_run_and_tensorboard_http_api(workspace):
    """MIC + dual branch via tools/train.py; TensorBoard serves its tags."""
    wd = str(workspace / 'work_dirs' / 'mic_dual_aug')
    run_tool(workspace, osp.join(ROOT, 'tools', 'train.py'),
             osp.join(ROOT, 'configs', 'mic_dual_aug.py'), '--work-dir', wd,
             '--cfg-options',
             *_opts(**{'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                       'default_hooks.checkpoint.interval': 2,
                       'model.vis_interval': 1}))
    assert osp.isfile(osp.join(wd, 'iter_2.pth'))
    state = torch.load(osp.join(wd, 'iter_2.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert int(state['local_iter']) == 2
    assert any(k.startswith('teacher.') for k in state)
    port = _free_port()
    tb = osp.join(osp.dirname(sys.executable), 'tensorboard')
    proc = subprocess.Popen([tb, '--logdir', wd, '--host', '127.0.0.1',
                             '--port', str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        base = f'http://127.0.0.1:{port}'
        scalars = images = None
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(
                        base + '/data/plugin/scalars/tags', timeout=5) as r:
                    scalars = json.load(r)
                with urllib.request.urlopen(
                        base + '/data/plugin/images/tags', timeout=5) as r:
                    images = json.load(r)
                if scalars and images:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert scalars, 'TensorBoard did not answer'
        tags = set().union(*[set(v) for v in scalars.values()])
        for tag in ('src.loss', 'dist.loss', 'mix.loss', 'masked.loss',
                    'pseudo_weight', 'loss', 'mIoU'):
            assert tag in tags, (tag, sorted(tags))
        img_tags = set().union(*[set(v) for v in images.values()])
        assert 'uda_panel' in img_tags
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_dist_train_two_cpu_processes_disjoint_samples(workspace):
    """tools/dist_train.sh with 2 gloo processes on the UDA config."""
    wd = str(workspace / 'work_dirs' / 'dist')
    rec = str(workspace / 'record')
    os.makedirs(rec, exist_ok=True)
    env = _env()
    env.update(PYTHON=sys.executable, PORT=str(_free_port()),
               PYTHONPATH=os.pathsep.join(
                   [ROOT, osp.join(ROOT, 'tests', 'foundation')]),
               MMPLUGINS_RECORD_DIR=rec)
    cfg = workspace / 'mic_dual_aug_record.py'
    cfg.write_text(
        f"_base_ = ['{osp.join(ROOT, 'configs', 'mic_dual_aug.py')}']\n"
        "custom_imports = dict(imports=['mmplugins', '_record_hook'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='RecordSamplesHook')]\n")
    out = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), str(cfg), '2',
         '--work-dir', wd, '--cfg-options', *_opts(**{
             'train_cfg.max_iters': 3, 'train_cfg.val_interval': 100,
             'default_hooks.checkpoint.interval': 100,
             'train_dataloader.batch_size': 1,
             'train_dataloader.dataset.rare_class_sampling': None})],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    seen = {}
    for rank in (0, 1):
        with open(osp.join(rec, f'rank{rank}.json')) as f:
            seen[rank] = json.load(f)
    a, b = set(seen[0]['samples']), set(seen[1]['samples'])
    # 3 iterations x batch 1 per rank = one pass over the 6 source images:
    # each rank sees its own half, together all of them
    assert len(seen[0]['samples']) == len(a) == 3 and len(b) == 3
    assert not a & b and len(a | b) == 6
    assert seen[0]['world_size'] == 2 and seen[0]['backend'] == 'gloo'
    # the EMA teachers (and students) are identical on both ranks
    assert seen[0]['teacher_hash'] == seen[1]['teacher_hash']
    assert seen[0]['student_hash'] == seen[1]['student_hash']
