"""Gradient accumulation and AMP with ``UDASegmentor`` through the real
mmengine ``Runner`` (tiny MiT student, 32x64 in-memory crops, CPU).

``UDASegmentor.train_step`` runs its own optimisation step (one backward per
loss term, then one ``should_update()``-gated step), so the Runner's
``OptimWrapper(accumulative_counts=N)`` and ``AmpOptimWrapper`` machinery is
only as correct as that step's bookkeeping; these tests pin it down.

AMP on a CPU-only machine: ``AmpOptimWrapper.__init__`` asserts
``is_cuda_available() or npu/mlu/musa`` (mmengine 0.10.7), so it cannot be
built here as is. Everything else in it works on CPU with ``dtype='bfloat16'``:
its ``optim_context`` enters ``mmengine.runner.amp.autocast(dtype=bf16)``,
whose device defaults to ``get_device()`` == ``'cpu'`` -> ``torch.autocast(
'cpu', bfloat16)``; its ``torch.cuda.amp.GradScaler`` disables itself when
CUDA is absent (scale/step/update become pass-throughs - bf16 needs no loss
scaling). The AMP test therefore patches only that availability check and
runs the real ``AmpOptimWrapper`` class; a second case swaps in an *enabled*
``torch.amp.GradScaler('cpu')`` so the scaled-backward-per-term / one
unscale+step path (what fp16 on a GPU runs) is exercised too.
"""
import contextlib

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

import mmplugins  # noqa: F401
from _tiny import student_cfg, uda_batch

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------ helpers
class _Samples(Dataset):
    """Per-sample dicts of a ``uda_batch`` (collated by ``pseudo_collate``)."""

    def __init__(self, batch):
        self.keys = list(batch)
        self.n = len(batch['inputs'])
        self.batch = batch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {k: self.batch[k][i] for k in self.keys}


class _Probe(Hook):
    """Counts optimizer steps (by iteration), keeps the train outputs and the
    student's parameters before the first iteration."""

    def __init__(self):
        self.steps, self.outputs, self.factors = [], [], []
        self.init = None

    def before_train(self, runner):
        ow = runner.optim_wrapper
        ow.optimizer.register_step_post_hook(
            lambda *_: self.steps.append(runner.iter))
        scale_loss = ow.scale_loss

        def spy(loss):  # the loss factor of every back-propagated term
            # (scale_loss is loss / factor, state-free; a term's loss may
            # be 0, e.g. MIC with pseudo-weight 0, so probe it with a 1)
            one = torch.ones((), dtype=torch.float64)
            self.factors.append((runner.iter, float(one / scale_loss(one))))
            return scale_loss(loss)

        ow.scale_loss = spy
        self.init = _params(runner.model.student)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.outputs.append({k: float(v) for k, v in outputs.items()})


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _train(tmp_path, name, batch, iters, batch_size, optim_wrapper,
           student=None, hooks=(), **model_opts):
    opts = dict(mix=None, mask_lambda=0.0)
    opts.update(model_opts)
    model = dict(type='UDASegmentor', segmentor=student or student_cfg(),
                 **opts)
    loader = DataLoader(_Samples(batch), batch_size=batch_size,
                        shuffle=False, collate_fn=pseudo_collate)
    probe = _Probe()
    runner = Runner(
        model=model, work_dir=str(tmp_path / name),
        train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=iters, val_interval=10**6),
        optim_wrapper=optim_wrapper,
        default_hooks=dict(checkpoint=None,
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[probe, *hooks], randomness=dict(seed=0),
        default_scope='mmseg', experiment_name=f'uda_acc_amp_{name}')
    runner.train()
    return runner, probe


def _sgd(**kw):
    # plain SGD (no momentum / weight decay): the update is exactly
    # -lr * grad, so a wrong loss factor shows up 1:1 in the parameters.
    # (AdamW normalises the gradient by its running RMS and would hide a
    # factor-of-2 error in the accumulated gradient almost completely.)
    return dict(type='OptimWrapper', constructor='UDAOptimWrapperConstructor',
                optimizer=dict(type='SGD', lr=0.1, momentum=0.0,
                               weight_decay=0.0), **kw)


def _finite(runner, probe):
    for out in probe.outputs:
        for k, v in out.items():
            assert torch.isfinite(torch.tensor(v)), (k, v)
    for k, v in runner.model.named_parameters():
        assert torch.isfinite(v).all(), k


# ------------------------------------------------------ 1. accumulation
def test_accumulation_steps_once_per_window(tmp_path):
    """4 iterations, accumulative_counts=2 -> steps after iterations 1 and 3;
    every term is back-propagated with loss/2."""
    ow = dict(type='OptimWrapper', constructor='UDAOptimWrapperConstructor',
              optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
              accumulative_counts=2)
    runner, probe = _train(tmp_path, 'acc', uda_batch(n=4, dist=False),
                           iters=4, batch_size=1, optim_wrapper=ow)
    assert probe.steps == [1, 3]
    assert [f for _, f in probe.factors] == [2.0] * 4
    # AdamW's per-parameter step counter agrees (student params only)
    opt = runner.optim_wrapper.optimizer
    counts = {int(s['step']) for s in opt.state.values()}
    assert counts == {2}
    assert int(runner.model.local_iter) == 4
    assert runner.optim_wrapper._inner_count == 4
    _finite(runner, probe)
    assert any(not torch.equal(v, probe.init[k])
               for k, v in runner.model.student.named_parameters())


def test_accumulation_with_several_terms(tmp_path):
    """DACS mix + MIC on (3 terms per iteration), accumulative_counts=2:
    every term of every iteration must be scaled by 1/2 and the optimizer
    must step after iterations 1 and 3."""
    ow = _sgd(accumulative_counts=2)
    runner, probe = _train(tmp_path, 'acc_terms', uda_batch(n=4, dist=False),
                           iters=4, batch_size=1, optim_wrapper=ow,
                           mix='class', mask_lambda=1.0, mask_block_size=8)
    assert probe.steps == [1, 3]
    assert probe.factors == [(i, 2.0) for i in range(4) for _ in range(3)]
    _finite(runner, probe)


# --------------------------------------- 2. accumulation == batch-2 step
def _deterministic_student():
    # no dropout / drop-path and GroupNorm instead of BN in the head: the
    # student's output for one image does not depend on the other images of
    # the batch (MiT uses LayerNorm), so batch 2 == two batches of 1
    cfg = student_cfg()
    cfg['backbone']['drop_path_rate'] = 0.0
    cfg['decode_head'].update(dropout_ratio=0.0,
                              norm_cfg=dict(type='GN', num_groups=4,
                                            requires_grad=True))
    return cfg


def test_accumulated_update_equals_batch2_update(tmp_path):
    """Two accumulated iterations of batch 1 (a, then b) == one iteration of
    batch 2 (a and b), with plain SGD.

    mmseg's CrossEntropyLoss (avg_non_ignore=False) averages over all
    pixels; the tiny labels have no ignore pixels, so both images have
    32*64 valid pixels and mean(batch of 2) == (mean(a) + mean(b)) / 2
    exactly. mix=None and mask_lambda=0 (the defaults of ``_train``) leave
    only the deterministic source term.
    """
    data = uda_batch(n=2, dist=False, target=False, seed=3)
    assert all((ds.gt_sem_seg.data != 255).all()
               for ds in data['data_samples'])
    student = _deterministic_student()
    r_acc, p_acc = _train(tmp_path, 'acc2', data, iters=2, batch_size=1,
                          optim_wrapper=_sgd(accumulative_counts=2),
                          student=student)
    r_b2, p_b2 = _train(tmp_path, 'batch2', data, iters=1, batch_size=2,
                        optim_wrapper=_sgd(), student=student)
    # negative control: one un-accumulated step on image a alone
    r_a, p_a = _train(tmp_path, 'only_a', data, iters=1, batch_size=1,
                      optim_wrapper=_sgd(), student=student)
    assert p_acc.steps == [1] and p_b2.steps == [0] and p_a.steps == [0]
    for p in (p_b2, p_a):  # same seed -> same initial weights
        for k, v in p.init.items():
            assert torch.equal(v, p_acc.init[k]), k

    def flat(runner, probe):
        return torch.cat([(v.detach() - probe.init[k]).flatten()
                          for k, v in runner.model.student.named_parameters()])

    d_acc, d_b2, d_a = flat(r_acc, p_acc), flat(r_b2, p_b2), flat(r_a, p_a)
    # Tolerance. In float64 the two updates agree to ~1e-10 (checked off-
    # line): the maths is identical. In float32 the runs sum the same per-
    # pixel gradient terms in a different order (batched vs. separate conv /
    # matmul reductions, the /2 before instead of after the sum), so each
    # element is off by a few ulps of the *terms* it sums - whose size is
    # that of the largest updates, not of the element itself (some elements,
    # e.g. of attn.sr.weight, are small differences of large terms, and their
    # own relative error reaches ~1e-3). So measure against the largest
    # update: observed 5e-7 (max) and 9e-7 (L2 norm ratio); allow 1e-5, i.e.
    # ~80 float32 ulps, 20x margin.
    scale = d_b2.abs().max()
    assert scale > 0
    assert float((d_acc - d_b2).abs().max() / scale) < 1e-5
    assert float((d_acc - d_b2).norm() / d_b2.norm()) < 1e-5
    # ... and far below what a real mistake produces: a's update alone is
    # off by ~0.5 (max) / 0.75 (norm), a missing /2 (2x the update) by 1.0
    assert float((d_a - d_b2).norm() / d_b2.norm()) > 0.1
    _finite(r_acc, p_acc)


# ------------------------------------------------------------- 3. AMP
class _DtypeProbe(Hook):
    """Forward hooks on two student convs (the first patch embedding and the
    head's 1x1 classifier, i.e. first and last layer) record the dtypes of
    their outputs while train_step runs."""

    def __init__(self):
        self.dtypes = []

    def before_train(self, runner):
        student = runner.model.student
        for m in (student.backbone.layers[0][0].projection,
                  student.decode_head.conv_seg):
            m.register_forward_hook(
                lambda mod, i, o: self.dtypes.append(o.dtype))


@pytest.mark.parametrize('scaler', ['default', 'cpu_scaler'])
def test_amp_bf16_through_runner(tmp_path, monkeypatch, scaler):
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp_mod
    with pytest.raises(AssertionError, match='only available'):
        amp_mod.AmpOptimWrapper(optimizer=torch.optim.SGD(
            [torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    # the only CUDA-specific line on the bf16 path (see module docstring)
    monkeypatch.setattr(amp_mod, 'is_cuda_available', lambda: True)

    class _Scaler(Hook):
        def before_train(self, runner):
            ow = runner.optim_wrapper
            assert type(ow).__name__ == 'AmpOptimWrapper'
            assert ow.cast_dtype == torch.bfloat16
            if scaler == 'default':
                # torch.cuda.amp.GradScaler disabled itself (no CUDA)
                assert not ow.loss_scaler.is_enabled()
            else:
                ow.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.**10)

    iters, dt = 3, _DtypeProbe()
    ow = dict(type='AmpOptimWrapper', dtype='bfloat16',
              constructor='UDAOptimWrapperConstructor',
              optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
    runner, probe = _train(tmp_path, f'amp_{scaler}',
                           uda_batch(n=iters, dist=False), iters=iters,
                           batch_size=1, optim_wrapper=ow,
                           hooks=(_Scaler(), dt), mix='class',
                           mask_lambda=1.0, mask_block_size=8)
    model = runner.model
    # one step per iteration, all terms scaled by 1 (no accumulation)
    assert probe.steps == list(range(iters))
    assert probe.factors == [(i, 1.0) for i in range(iters) for _ in range(3)]
    if scaler == 'cpu_scaler':  # nothing overflowed: no step was skipped
        assert runner.optim_wrapper.loss_scaler.get_scale() == 2.**10
    # src, mix, masked: 3 student forwards per iteration, all under autocast
    for out in probe.outputs:
        assert {'src.loss', 'mix.loss', 'masked.loss'} <= set(out)
    assert len(dt.dtypes) == 2 * 3 * iters
    assert set(dt.dtypes) == {torch.bfloat16}, dt.dtypes
    # master weights and the EMA teacher stay float32 (and move)
    assert {p.dtype for p in model.student.parameters()} == {torch.float32}
    assert {p.dtype for p in model.teacher.parameters()} == {torch.float32}
    assert {b.dtype for b in model.teacher.buffers()
            if b.is_floating_point()} == {torch.float32}
    moved = [not torch.equal(v, probe.init[k])
             for k, v in model.teacher.named_parameters()]
    assert any(moved)
    _finite(runner, probe)


# ------------------------------------- DDP gradient sync under accumulation
class _FakeDDP(torch.nn.Module):
    """Stands in for the MMDistributedDataParallel student (single process):
    records, per forward, whether gradient sync would be on (real DDP decides
    that in forward, from ``no_sync``)."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.sync = True
        self.log = []

    def forward(self, *args, **kwargs):
        self.log.append(self.sync)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        old, self.sync = self.sync, False
        try:
            yield
        finally:
            self.sync = old


def test_ddp_student_syncs_only_on_update_iterations(monkeypatch):
    """Under DDP the student's gradients must be all-reduced exactly in the
    last term's backward of an iteration that steps: with
    accumulative_counts=2 and two terms (src, mix), iterations 1 and 3."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import mmplugins.models.uda.uda_segmentor as uda_mod
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(type='UDASegmentor',
                                  segmentor=student_cfg(), mix='class',
                                  mask_lambda=0.0))
    model.init_weights()
    model.train()
    is_wrapper = uda_mod.is_model_wrapper
    monkeypatch.setattr(uda_mod, 'is_model_wrapper', lambda m: isinstance(
        m, _FakeDDP) or is_wrapper(m))
    model.student = _FakeDDP(model.student)
    ow = build_optim_wrapper(model, dict(
        type='OptimWrapper', accumulative_counts=2,
        optimizer=dict(type='SGD', lr=0.01)))
    data = uda_batch(n=4, dist=False)
    synced = []
    for i in range(4):
        model.student.log.clear()
        model.train_step({k: v[i:i + 1] for k, v in data.items()}, ow)
        synced.append(list(model.student.log))
    assert synced == [[False, False], [False, True]] * 2, synced
