"""``NaNGuardHook(action='skip')`` with ``UDASegmentor`` (issue #13): a
skipped iteration leaves no trace -- student, EMA teacher, separate MIC
teacher, ``local_iter``, BN statistics, optimizer and loss-scaler state,
accumulated gradients -- and the run goes on as if the bad batch had never
come. The hook is driven the way the Runner drives it (before_train,
before/after_train_iter), on a tiny MiT student (CPU, ~1 s per step)."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

import mmplugins  # noqa: F401
from _tiny import student_cfg, uda_batch
from mmplugins.engine.hooks.nan_guard_hook import NaNGuardHook


@pytest.fixture(scope='module', autouse=True)
def _mmseg():
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _build(**kw):
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    opts = dict(mix='class', mask_lambda=1.0, mask_block_size=8,
                mask_alpha=0.5, pseudo_threshold=0.0)  # separate MIC teacher
    opts.update(kw)
    m = MODELS.build(dict(type='UDASegmentor', segmentor=student_cfg(),
                          **opts))
    m.init_weights()
    m.train()
    return m


def _runner(m, ow):
    return SimpleNamespace(model=m, optim_wrapper=ow, iter=0,
                           message_hub=MessageHub.get_instance('uda_nan'))


def _poison(m, term):
    """Make the `term` loss of the next train_step NaN (the terms before it
    are back-propagated normally)."""
    orig = m._term_losses

    def term_losses(t, *args, **kwargs):
        out = orig(t, *args, **kwargs)
        if t == term:
            out = {k: v * float('nan') if k.endswith('.loss') else v
                   for k, v in out.items()}
            m._term_losses = orig
        return out

    m._term_losses = term_losses


def _step(hook, runner, seed, poison=None):
    m = runner.model
    if poison:
        _poison(m, poison)
    torch.manual_seed(1000 + seed)  # same randomness with or without a skip
    hook.before_train_iter(runner, runner.iter)
    out = m.train_step(uda_batch(seed=seed), runner.optim_wrapper)
    hook.after_train_iter(runner, runner.iter, outputs=out)
    runner.iter += 1
    return out


def _state(m, ow):
    state = {k: v.detach().clone() for k, v in m.state_dict().items()}
    opt = ow.optimizer.state_dict()
    return state, opt


def _equal_state(a, b):
    (sa, oa), (sb, ob) = a, b
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert oa['param_groups'] == ob['param_groups']
    assert oa['state'].keys() == ob['state'].keys()
    for i in oa['state']:
        for name, v in oa['state'][i].items():
            assert torch.equal(torch.as_tensor(v),
                               torch.as_tensor(ob['state'][i][name])), (i,
                                                                        name)


@pytest.mark.parametrize('term', ['src', 'mix', 'masked'])
def test_skip_leaves_no_trace_and_next_iteration_is_unchanged(term):
    """NaN in one term (the earlier terms already back-propagated): after
    the skipped iteration everything equals the state before it, bitwise;
    the next good iteration equals a twin run that never saw the bad batch
    (same teacher used, same state after)."""
    m, twin = _build(), _build()
    runs = []
    for model in (m, twin):
        ow = OptimWrapper(torch.optim.AdamW(model.student.parameters(),
                                            lr=1e-3))
        hook = NaNGuardHook(action='skip')
        runner = _runner(model, ow)
        hook.before_train(runner)
        runs.append((model, ow, hook, runner))
    (m, ow, hook, runner), (twin, tow, thook, trunner) = runs
    for seed in (0, 1):
        _step(hook, runner, seed)
        _step(thook, trunner, seed)
    before = _state(m, ow)
    assert m.mic.teacher is not None and int(m.local_iter) == 2
    _step(hook, runner, 7, poison=term)
    assert hook.skipped == 1
    _equal_state(before, _state(m, ow))
    assert all(p.grad is None or not p.grad.any()
               for p in m.student.parameters())
    # the next iteration: teacher and MIC teacher used, and the state after,
    # equal the twin's that never saw iteration 7
    seen = {}
    for model, key in ((m, 'm'), (twin, 't')):
        seen[key] = []
        model.teacher.register_forward_pre_hook(
            lambda mod, a, key=key: seen[key].append(
                [p.clone() for p in mod.parameters()]))
    _step(hook, runner, 2)
    _step(thook, trunner, 2)
    assert all(torch.equal(a, b) for a, b in zip(seen['m'][0], seen['t'][0]))
    _equal_state(_state(twin, tow), _state(m, ow))
    assert int(m.local_iter) == 3


def test_skip_restores_loss_scaler_state():
    """AMP's GradScaler (an enabled CPU one standing in for fp16 on a GPU):
    its scale and growth tracker are not moved by a skipped iteration."""
    from mmengine.optim import AmpOptimWrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp_mod
    m = _build(mask_lambda=0.0)
    orig = amp_mod.is_cuda_available
    amp_mod.is_cuda_available = lambda: True
    try:
        ow = AmpOptimWrapper(optimizer=torch.optim.SGD(
            m.student.parameters(), lr=0.1), dtype='bfloat16')
    finally:
        amp_mod.is_cuda_available = orig
    ow.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.**10,
                                          growth_interval=1)
    hook = NaNGuardHook(action='skip')
    runner = _runner(m, ow)
    hook.before_train(runner)
    _step(hook, runner, 0)
    scaler = dict(ow.loss_scaler.state_dict())
    before = _state(m, ow)
    _step(hook, runner, 1, poison='mix')
    assert hook.skipped == 1
    assert dict(ow.loss_scaler.state_dict()) == scaler
    _equal_state(before, _state(m, ow))
    _step(hook, runner, 2)  # a good step grows the scale (interval 1)
    assert ow.loss_scaler.get_scale() == 2 * scaler['scale']


def _acc_run(k):
    m = _build(mask_lambda=0.0)
    ow = OptimWrapper(torch.optim.SGD(m.student.parameters(), lr=0.1),
                      accumulative_counts=k)
    ow.initialize_count_status(m, 0, 100)
    hook = NaNGuardHook(action='skip')
    runner = _runner(m, ow)
    hook.before_train(runner)
    return m, ow, hook, runner


def _grads(m):
    return {n: None if p.grad is None else p.grad.clone()
            for n, p in m.student.named_parameters()}


def test_accumulation_mid_window_skip_keeps_the_window():
    """accumulative_counts=3, iteration 2 of a window skipped: the gradients
    of iteration 1 are back, unchanged; the window's step then applies
    iterations 1 and 3 -- as a twin whose window never had iteration 2."""
    m, ow, hook, runner = _acc_run(3)
    twin, tow, thook, trunner = _acc_run(3)
    _step(hook, runner, 0)
    _step(thook, trunner, 0)
    grads, params = _grads(m), _state(m, ow)
    assert any(g is not None and g.any() for g in grads.values())
    _step(hook, runner, 5, poison='mix')
    assert hook.skipped == 1
    after = _grads(m)
    assert all((grads[n] is None and after[n] is None)
               or torch.equal(grads[n], after[n]) for n in grads)
    _equal_state(params, _state(m, ow))
    _step(hook, runner, 1)  # the window's last: steps
    trunner.optim_wrapper._inner_count = ow._inner_count - 1
    _step(thook, trunner, 1)
    _equal_state(_state(twin, tow), _state(m, ow))


def test_accumulation_skip_at_window_end_drops_the_window():
    m, ow, hook, runner = _acc_run(2)
    before = _state(m, ow)
    _step(hook, runner, 0)
    _step(hook, runner, 1, poison='src')  # the window's step is refused
    assert hook.skipped == 1
    assert all(p.grad is None or not p.grad.any()
               for p in m.student.parameters())
    state, _ = _state(m, ow)
    for k, v in before[0].items():  # student and teacher never moved
        if k.startswith(('student.', 'teacher.')) and 'running' not in k \
                and 'num_batches' not in k:
            assert torch.equal(v, state[k]), k
    assert int(m.local_iter) == 1


def test_accumulation_teacher_moves_once_per_optimizer_step():
    """With accumulative_counts=2 the teacher is updated after the step
    (iterations 1, 3, ...), with alpha = ema_alpha(local_iter)."""
    m, ow, hook, runner = _acc_run(2)
    init = [p.clone() for p in m.student.parameters()]
    _step(hook, runner, 0)
    assert all(torch.equal(t, s) for t, s in zip(m.teacher.parameters(),
                                                 init))
    _step(hook, runner, 1)  # steps; teacher of iteration 2: alpha 2/3
    student = list(m.student.parameters())
    assert not torch.equal(student[0], init[0])
    for t, s0, s in zip(m.teacher.parameters(), init, student):
        assert torch.allclose(t, 2 / 3 * s0 + 1 / 3 * s, atol=1e-7)
