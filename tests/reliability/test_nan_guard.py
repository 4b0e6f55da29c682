"""Issue #7, item 5: a NaN/Inf loss stops training with a message naming
the loss term and the iteration (or, opted in, skips the step), and no NaN
ever reaches the weights or a checkpoint."""
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper

from mmplugins.engine.hooks.nan_guard_hook import (NaNGuardHook,
                                                   non_finite_terms)


class TinyModel(BaseModel):
    """Linear + BatchNorm: the BN running stats move in the forward."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, inputs, data_samples=None, mode='loss'):
        out = self.bn(self.fc(inputs))
        return dict(loss_main=out.pow(2).mean(), loss_aux=out.abs().mean(),
                    acc=torch.tensor(1.))


def _runner(model, it=0):
    ow = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    return SimpleNamespace(model=model, optim_wrapper=ow, iter=it,
                           message_hub=MessageHub.get_instance('nan_test'))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _step(hook, runner, x):
    hook.before_train_iter(runner, runner.iter)
    out = runner.model.train_step(dict(inputs=x), runner.optim_wrapper)
    hook.after_train_iter(runner, runner.iter, outputs=out)
    runner.iter += 1
    return out


def test_non_finite_terms():
    assert non_finite_terms(dict(loss_a=torch.tensor(1.),
                                 loss_b=torch.tensor(float('nan')),
                                 acc=torch.tensor(float('inf')),
                                 loss_c=[torch.tensor(0.),
                                         torch.tensor(float('inf'))])) == [
                                             'loss_b', 'loss_c']


def test_stop_names_term_and_iteration_weights_untouched():
    torch.manual_seed(0)
    model = TinyModel()
    runner = _runner(model)
    hook = NaNGuardHook(action='stop')
    hook.before_train(runner)
    _step(hook, runner, torch.randn(8, 4))  # iteration 1: fine
    before = _state(model)
    x = torch.randn(8, 4)
    x[0, 0] = float('nan')
    with pytest.raises(FloatingPointError,
                       match=r"loss term\(s\) \['loss_main', 'loss_aux'\].*"
                       r'at iteration 2'):
        _step(hook, runner, x)
    after = _state(model)
    for k in before:  # parameters untouched; BN stats are not saved below
        if not k.startswith('bn.running') and k != 'bn.num_batches_tracked':
            assert torch.equal(before[k], after[k]), k
    # the checkpoint guard refuses the state with NaN BN statistics
    with pytest.raises(FloatingPointError, match='refusing to write'):
        hook.before_save_checkpoint(
            runner, dict(state_dict=model.state_dict()))


def test_skip_restores_everything_and_counts():
    torch.manual_seed(0)
    model = TinyModel()
    runner = _runner(model)
    hook = NaNGuardHook(action='skip', max_skips=2)
    hook.before_train(runner)
    _step(hook, runner, torch.randn(8, 4))
    before = _state(model)
    x = torch.full((8, 4), float('inf'))
    _step(hook, runner, x)  # skipped
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert hook.skipped == 1
    assert runner.message_hub.get_scalar(
        'train/nan_guard_skipped').current() == 1
    _step(hook, runner, torch.randn(8, 4))  # trains again
    assert not torch.equal(before['fc.weight'], model.fc.weight)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values()
               if v.is_floating_point())
    _step(hook, runner, x)
    with pytest.raises(FloatingPointError, match='2 iterations in a row'):
        _step(hook, runner, x)


def test_non_finite_gradient_stops_before_step():
    torch.manual_seed(0)
    model = TinyModel()
    runner = _runner(model)
    hook = NaNGuardHook(action='stop')
    hook.before_train(runner)
    before = _state(model)
    # a finite loss whose gradient overflows
    model.fc.weight.register_hook(lambda g: g * float('inf'))
    with pytest.raises(FloatingPointError, match=r'gradients of .*fc.weight'):
        _step(hook, runner, torch.randn(8, 4))
    assert torch.equal(before['fc.weight'], model.fc.weight)


def test_bad_arguments():
    with pytest.raises(ValueError, match="action must be 'stop' or 'skip'"):
        NaNGuardHook(action='ignore')
    with pytest.raises(ValueError, match='max_skips'):
        NaNGuardHook(max_skips=0)


@pytest.mark.slow
@pytest.mark.parametrize('action', ['stop', 'skip'])
def test_real_run_nan_input(rel_data, runs, tmp_path, action):
    """Mask classifier, NaN inputs at iteration 3, checkpoint every 2."""
    hooks = [dict(type='NaNGuardHook', action=action),
             dict(type='FaultInjectionHook', nan_at_iter=3)]
    cfg = runs.write_config(runs.cls_config(rel_data['cls'], 6, hooks),
                            str(tmp_path / 'cfg.py'))
    wd = str(tmp_path / 'work')
    rc = runs.train_forked(cfg, wd)
    log = runs.read_log(wd)
    if action == 'stop':
        assert rc == 1
        assert 'FloatingPointError: NaNGuardHook: non-finite loss term(s)' \
            in log and 'at iteration 3' in log
        assert sorted(os.listdir(wd)).count('iter_4.pth') == 0
        latest = open(osp.join(wd, 'last_checkpoint')).read().strip()
        assert latest.endswith('iter_2.pth')
        ckpts = [osp.join(wd, 'iter_2.pth')]
    else:
        assert rc == 0, log
        assert 'skipping this update' in log
        skipped = runs.losses(wd, 'nan_guard_skipped')
        assert skipped[2] == 0 and skipped[3] == 1 and skipped[6] == 1
        ckpts = [osp.join(wd, f'iter_{i}.pth') for i in (4, 6)]
    for path in ckpts:
        state = torch.load(path, map_location='cpu',
                           weights_only=True)['state_dict']
        assert all(torch.isfinite(v).all() for v in state.values()
                   if v.is_floating_point()), path


@pytest.mark.slow
def test_uda_skip_drops_the_whole_uda_iteration(rel_data, runs, tmp_path):
    """MIC + dual branch: NaN inputs at iteration 3 with action='skip'. The
    UDASegmentor hands its bad term to the hook instead of stopping; the run
    goes on and every checkpoint (student, teacher, counter) is finite."""
    hooks = [dict(type='NaNGuardHook', action='skip'),
             dict(type='FaultInjectionHook', nan_at_iter=3)]
    cfg = runs.write_config(runs.seg_config(rel_data['seg'], 5, hooks,
                                            ckpt_interval=5, num_workers=0),
                            str(tmp_path / 'cfg.py'))
    wd = str(tmp_path / 'work')
    rc = runs.train_forked(cfg, wd)
    log = runs.read_log(wd)
    assert rc == 0, log[-3000:]
    assert 'UDASegmentor: loss term `src` is nan at UDA iteration 2' in log
    assert 'skipping this update' in log
    skipped = runs.losses(wd, 'nan_guard_skipped')
    assert skipped[2] == 0 and skipped[3] == 1 and skipped[5] == 1
    state = torch.load(osp.join(wd, 'iter_5.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())
    # the skipped iteration's counter increment was undone with the buffers
    assert int(state['local_iter']) == 4
