"""Stack fixes: resume under torch>=2.6 weights_only, CPU DDP arguments."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmplugins  # noqa: F401  (applies the fixes)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.lin(x)
        if mode == 'loss':
            y = torch.stack(labels) if isinstance(labels, list) else labels
            return dict(loss=((out.squeeze(-1) - y)**2).mean())
        return out


class ToyData(torch.utils.data.Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(2, generator=g)
        return dict(inputs=x, labels=x.sum())


def _runner(work_dir, max_iters, resume=False):
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), batch_size=4,
                              sampler=dict(type='InfiniteSampler',
                                           shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(type='LinearLR', start_factor=0.1,
                             by_epoch=False, begin=0, end=10),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=3, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=resume,
        log_processor=dict(by_epoch=False), default_scope=None)


def test_resume_loads_mmengine_checkpoints_with_safe_loader(tmp_path):
    r = _runner(tmp_path, 3)
    r.train()
    ckpt = osp.join(tmp_path, 'iter_3.pth')
    assert osp.isfile(ckpt)
    # the safe (weights_only) loader accepts the full runner state ...
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 3
    assert 'message_hub' in state and 'optimizer' in state
    # ... and resume continues from iteration 3 with identical optimiser state
    r2 = _runner(tmp_path, 6, resume=True)
    r2._train_loop = r2.build_train_loop(r2._train_loop)
    r2.call_hook('before_run')
    r2.load_or_resume()
    assert r2.iter == 3
    saved = state['optimizer']['state']
    loaded = r2.optim_wrapper.optimizer.state_dict()['state']
    for k in saved:
        for name in ('exp_avg', 'exp_avg_sq'):
            assert torch.equal(saved[k][name], loaded[k][name])
    assert r2.param_schedulers[0].last_step == \
        state['param_schedulers'][0]['last_step']


def test_stock_mmengine_checkpoint_gets_a_clear_error_and_upgrade(tmp_path):
    import subprocess
    import sys

    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint

    buf = HistoryBuffer()
    buf.update(1.0)
    legacy = buf.__dict__.copy()
    # what stock mmengine pickles: the built-in statistics functions
    legacy['statistics_methods'] = dict(HistoryBuffer._statistics_methods)

    class Legacy(HistoryBuffer):
        def __reduce_ex__(self, proto):
            return (HistoryBuffer.__new__, (HistoryBuffer, ), legacy)

    path = str(tmp_path / 'stock.pth')
    torch.save({'meta': {'iter': 1}, 'hub': Legacy()}, path)
    with pytest.raises(RuntimeError, match='upgrade_checkpoint.py'):
        _load_checkpoint(path, map_location='cpu')
    tool = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'misc',
                    'upgrade_checkpoint.py')
    out = subprocess.run([sys.executable, tool, path], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    state = _load_checkpoint(path, map_location='cpu')
    assert state['hub'].current() == 1.0
    assert osp.isfile(path + '.bak')


def test_unsafe_globals_are_still_rejected(tmp_path):
    """The fix allow-lists checkpoint types, it does not disable safety."""
    path = tmp_path / 'evil.pth'
    torch.save({'x': osp.join}, path)  # an arbitrary callable
    with pytest.raises(Exception, match='weights_only|Unsupported global'):
        torch.load(path, weights_only=True)


def test_cpu_ddp_drops_device_ids():
    """The Runner passes device_ids=[LOCAL_RANK]; CPU DDP must get None."""
    import torch.distributed as dist
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel
    assert getattr(dist_utils._init_dist_pytorch, '_mmplugins', False)
    if torch.cuda.is_available():
        pytest.skip('CPU-only behaviour')
    dist.init_process_group('gloo', init_method='tcp://127.0.0.1:29761',
                            rank=0, world_size=1)
    try:
        ddp = MMDistributedDataParallel(module=ToyModel(), device_ids=[0])
        assert ddp.device_ids is None
        out = ddp.train_step(dict(inputs=[torch.ones(2)],
                                  labels=[torch.tensor(1.0)]),
                             optim_wrapper=_optim(ddp))
        assert 'loss' in out
    finally:
        dist.destroy_process_group()


def _optim(model):
    from mmengine.optim import OptimWrapper
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))


def test_config_formatter_runs_once_per_text(monkeypatch):
    """Counts the calls of the underlying formatter (yapf): 20 uses of one
    config's pretty_text format it once; without the cache it would be 20.
    The stock path (remove_patches) gives the same text."""
    from mmengine.config import Config
    from mmengine.config import config as mm_config
    from mmplugins import compat
    patched = mm_config.FormatCode
    assert getattr(patched, '_mmplugins', False)
    calls = []
    yapf = patched._stock

    def counting(text, **kwargs):
        calls.append(text)
        return yapf(text, **kwargs)

    monkeypatch.setattr(patched, '_stock', counting)
    patched.cache.cache_clear()
    cfg = Config(dict(model=dict(type='A', layers=[1, 2, 3]), lr=0.1,
                      nonce='test_config_formatter_runs_once_per_text'))
    first = cfg.pretty_text
    for _ in range(20):
        assert cfg.pretty_text == first
    assert len(calls) == 1
    cfg.lr = 0.2  # a changed config is formatted anew, once
    assert 'lr = 0.2' in cfg.pretty_text and cfg.pretty_text
    assert len(calls) == 2
    monkeypatch.undo()
    compat.remove_patches()
    try:
        assert mm_config.FormatCode is yapf  # stock: yapf itself
        assert Config(cfg.to_dict()).pretty_text == cfg.pretty_text
    finally:
        compat.apply_patches()
    assert getattr(mm_config.FormatCode, '_mmplugins', False)


def test_checkpoint_loader_stock_fails_patched_loads(tmp_path):
    """Stock (remove_patches): resume's loader refuses an mmengine
    checkpoint under torch's weights_only default; patched: it loads."""
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmplugins import compat
    _runner(tmp_path, 3).train()
    ckpt = osp.join(tmp_path, 'iter_3.pth')
    compat.remove_patches()
    try:
        with pytest.raises(Exception, match='Unsupported global|weights_only'):
            _load_checkpoint(ckpt, map_location='cpu')
    finally:
        compat.apply_patches()
    assert _load_checkpoint(ckpt, map_location='cpu')['meta']['iter'] == 3


def test_cpu_ddp_device_ids_stock_fails_patched_works():
    import torch.distributed as dist
    from mmengine.model.wrappers import MMDistributedDataParallel
    from mmplugins import compat
    if torch.cuda.is_available():
        pytest.skip('CPU-only behaviour')
    dist.init_process_group('gloo', init_method='tcp://127.0.0.1:29763',
                            rank=0, world_size=1)
    try:
        compat.remove_patches()
        try:
            with pytest.raises(ValueError, match='device_ids'):
                MMDistributedDataParallel(module=ToyModel(), device_ids=[0])
        finally:
            compat.apply_patches()
        ddp = MMDistributedDataParallel(module=ToyModel(), device_ids=[0])
        assert ddp.device_ids is None
    finally:
        dist.destroy_process_group()


def test_slurm_without_variables_one_clear_error(monkeypatch):
    from mmengine.dist import utils as dist_utils
    if torch.cuda.is_available():
        pytest.skip('CPU-only behaviour')
    for v in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST',
              'SLURM_LOCALID'):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(KeyError, match='SLURM_PROCID'):  # stock
        dist_utils._init_dist_slurm._stock('nccl')
    with pytest.raises(RuntimeError,
                       match=r"launcher='slurm' needs the SLURM variables "
                       r"\['SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST', "
                       r"'SLURM_LOCALID'\].*no CUDA"):
        dist_utils.init_dist('slurm', backend='nccl')


def test_accelerator_paths_go_through_stock_unchanged(monkeypatch):
    """With CUDA (or MLU/NPU/MUSA) the wrappers call mmengine's function
    with the arguments as given: no backend swap, set_device untouched."""
    from mmengine.dist import utils as dist_utils
    from mmplugins import compat
    seen = []
    for name in ('_init_dist_pytorch', '_init_dist_slurm'):
        fn = getattr(dist_utils, name)
        monkeypatch.setattr(fn, '_stock', lambda backend, *a, name=name,
                            **kw: seen.append((name, backend, a, kw,
                                               torch.cuda.set_device)))
    for flag in ('_cuda_usable', '_other_accelerator'):
        monkeypatch.setattr(compat, '_cuda_usable', lambda: False)
        monkeypatch.setattr(compat, '_other_accelerator', lambda: False)
        monkeypatch.setattr(compat, flag, lambda: True)
        dist_utils._init_dist_pytorch('nccl', init_backend='torch')
        dist_utils._init_dist_slurm('nccl', port=29999)
    real = torch.cuda.set_device
    assert [s[:2] for s in seen] == [('_init_dist_pytorch', 'nccl'),
                                     ('_init_dist_slurm', 'nccl')] * 2
    assert all(s[4] is real for s in seen)
    assert seen[1][3]['port'] == 29999


_DIST_SCRIPT = r"""
import os, sys, logging
import torch
import mmplugins
from mmengine.dist import utils as dist_utils
from mmengine.logging import MMLogger
import torch.distributed as dist
logger = MMLogger.get_instance('compat_dist', log_file=sys.argv[1])
mode = sys.argv[2]
fn = dict(pytorch=dist_utils._init_dist_pytorch,
          slurm=dist_utils._init_dist_slurm)[mode]
try:
    fn._stock('nccl')  # stock: torch.cuda.set_device without CUDA
    print('STOCK ok')
except Exception as e:
    print('STOCK', type(e).__name__, str(e)[:200])
dist_utils.init_dist(mode, backend='nccl')
print('PATCHED', dist.get_backend(), dist.get_world_size())
print('SET_DEVICE_RESTORED', torch.cuda.set_device.__name__)
dist.destroy_process_group()
"""


@pytest.mark.parametrize('mode', ['pytorch', 'slurm'])
def test_nccl_without_cuda_stock_fails_patched_uses_gloo(tmp_path, mode):
    """Fresh process (a process group is process-wide): stock mmengine fails
    at torch.cuda.set_device; patched, the same mmengine code runs with gloo
    and a WARNING line naming nccl and gloo is logged."""
    import socket
    import subprocess
    import sys
    if torch.cuda.is_available():
        pytest.skip('CPU-only behaviour')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in __import__('os').environ.items()
           if not k.startswith('SLURM_')}
    env.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
               OMP_NUM_THREADS='1')
    if mode == 'pytorch':
        env.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1')
    else:
        env.update(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_LOCALID='0',
                   SLURM_NODELIST='localhost')
    log = str(tmp_path / 'dist.log')
    out = subprocess.run([sys.executable, '-c', _DIST_SCRIPT, log, mode],
                         env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    stock = [ln for ln in lines if ln.startswith('STOCK')][0]
    assert stock.startswith('STOCK RuntimeError') and any(
        w in stock for w in ('CUDA', 'cuda', 'NVIDIA')), stock
    assert 'PATCHED gloo 1' in lines
    assert 'SET_DEVICE_RESTORED set_device' in lines
    text = open(log).read()
    assert "WARNING - mmplugins: dist backend 'nccl' was requested but " \
        "CUDA is not available; using 'gloo' instead" in text
