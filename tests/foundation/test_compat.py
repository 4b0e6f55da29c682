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


def test_config_pretty_text_is_formatted_once_and_identical():
    import time

    from mmengine.config import Config
    from mmengine.config import config as mm_config
    cfg = Config(dict(model=dict(type='A', layers=[1, 2, 3]), lr=0.1))
    first = cfg.pretty_text
    assert getattr(mm_config.FormatCode, '_mmplugins', False)
    start = time.perf_counter()
    for _ in range(20):
        assert cfg.pretty_text == first
    assert time.perf_counter() - start < 1.0
    cfg.lr = 0.2  # a changed config is formatted anew
    assert 'lr = 0.2' in cfg.pretty_text
