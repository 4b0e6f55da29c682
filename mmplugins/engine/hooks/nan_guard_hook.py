"""Stop (or skip the step) on a NaN/Inf loss before it reaches the weights.

A non-finite loss in OpenMMLab 2.0 is back-propagated, stepped into every
weight by the optimizer and saved by the next ``CheckpointHook`` over the
last good checkpoint; the log shows ``loss: nan`` many iterations later.
:class:`NaNGuardHook` checks at the two places where the weights could still
be saved:

* the loss handed to ``optim_wrapper.backward`` (every model goes through
  it: mmengine's ``BaseModel.train_step`` via ``update_params``, and custom
  steps such as ``UDASegmentor``'s per-term backward);
* the gradients, right before ``optim_wrapper.step`` (an overflow can
  appear in the backward pass of a finite loss).

and, as a last line, refuses to write a checkpoint whose model state holds a
non-finite value.
"""
from typing import Dict, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmplugins.registry import register_module


def non_finite_terms(losses: Dict[str, object]) -> List[str]:
    """Names of the loss terms (keys containing ``'loss'``) that hold a
    NaN/Inf value; tensors, lists of tensors and numbers are understood."""
    bad = []
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            t = torch.as_tensor(v.detach() if torch.is_tensor(v) else v)
            if t.is_floating_point() and not torch.isfinite(t).all():
                bad.append(key)
                break
    return bad


def non_finite_tensors(named_tensors) -> List[str]:
    """Names of floating tensors with a NaN/Inf element."""
    return [
        name for name, t in named_tensors
        if t is not None and torch.is_tensor(t) and t.is_floating_point()
        and not torch.isfinite(t).all()
    ]


@register_module('hooks')
class NaNGuardHook(Hook):
    """Guard the weights (and checkpoints) against non-finite losses.

    Example::

        custom_hooks = [dict(type='NaNGuardHook', action='stop')]

    Args:
        action (str): ``'stop'`` (default): raise ``FloatingPointError``
            naming the loss term(s) and the iteration before the optimizer
            step. ``'skip'``: drop this iteration's update (no backward of
            the bad loss, no step, gradients zeroed, normalisation buffers
            restored), count it in the log as ``nan_guard_skipped``, and go
            on.
        max_skips (int): With ``'skip'``, stop anyway after this many
            skipped iterations in a row (a diverged run never recovers).
            Defaults to 10.
        check_grads (bool): Also check the gradients before each step.
            Defaults to True. Off under ``AmpOptimWrapper``, whose loss
            scaler treats inf gradients as an overflow and skips the step.
        check_checkpoint (bool): Refuse to write a checkpoint whose model
            state is not finite. Defaults to True.

    Note:
        ``UDASegmentor`` checks every loss term itself; with this hook
        registered it hands a bad term to the hook (with ``'stop'`` the
        hook raises, naming the term and the iteration). With ``'skip'``
        the whole UDA iteration is dropped: no term's gradient reaches the
        weights, no optimizer or loss-scaler step, the EMA teacher(s) and
        the UDA iteration counter ``local_iter`` are not advanced (the
        segmentor updates its teachers after the optimizer step, which a
        skipped iteration does not take), and every buffer (BN statistics,
        student's and teachers') is restored.

        Under DDP every rank agrees: the finite flag of each loss handed to
        ``backward`` (and of the gradients before ``step``) is all-reduced
        before any rank back-propagates or steps, so a NaN on one rank makes
        all ranks skip (or stop) the same iteration -- no rank waits alone
        in the gradient all-reduce. This costs one all-reduce of a scalar
        per ``backward``/``step`` call, and only when the world size is > 1.

        Gradient accumulation (``accumulative_counts=k``): a skipped
        iteration in the middle of a window restores the gradients that the
        window's earlier iterations accumulated (a copy is kept at the start
        of each such iteration, one gradient-sized buffer); a skipped
        iteration that is the window's last drops the whole window (its
        step is not taken and the gradients are zeroed).

        What does advance on a skip: the Runner's iteration, the LR
        schedule (a function of that iteration) and the random streams (the
        batch was drawn). The loss term names come from the dict of losses
        the model returns (via ``parse_losses``); a model with its own
        ``train_step`` gets the generic name ``loss`` unless it names its
        terms (``UDASegmentor`` does).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 action: str = 'stop',
                 max_skips: int = 10,
                 check_grads: bool = True,
                 check_checkpoint: bool = True) -> None:
        if action not in ('stop', 'skip'):
            raise ValueError(f"NaNGuardHook: action must be 'stop' or "
                             f"'skip', but got action: {action!r}")
        if not isinstance(max_skips, int) or max_skips < 1:
            raise ValueError(f'max_skips must be an int >= 1, but got '
                             f'max_skips: {max_skips!r}')
        self.action = action
        self.max_skips = max_skips
        self.check_grads = check_grads
        self.check_checkpoint = check_checkpoint
        self.skipped = 0          # total skipped iterations
        self._in_a_row = 0
        self._skip_this = False
        self._last_losses: Optional[dict] = None
        self._iter = 0
        self._buffers: Optional[Dict[str, torch.Tensor]] = None
        self._grads: Dict[int, Dict[int, torch.Tensor]] = {}
        self._step_refused = False
        self._model = None
        self._wrappers: list = []

    @property
    def skipping(self) -> bool:
        """Whether the current iteration is being dropped (all ranks agree
        once a ``backward`` or ``step`` has been called)."""
        return self._skip_this

    def name_terms(self, losses: Dict[str, object]) -> None:
        """Let a model with its own ``train_step`` name the loss term it is
        about to hand to ``backward`` (used in the messages)."""
        self._last_losses = losses

    # ----------------------------------------------------------- wiring
    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._model = model
        if hasattr(model, 'parse_losses') and not getattr(
                model.parse_losses, '_nan_guard', False):
            parse = model.parse_losses

            def parse_losses(losses):
                self._last_losses = losses
                return parse(losses)

            parse_losses._nan_guard = True
            model.parse_losses = parse_losses
        wrappers = (runner.optim_wrapper.values() if hasattr(
            runner.optim_wrapper, 'values') and not hasattr(
                runner.optim_wrapper, 'backward') else
                    [runner.optim_wrapper])
        self._wrappers = list(wrappers)
        for ow in self._wrappers:
            self._wrap(ow)

    def _wrap(self, ow) -> None:
        if getattr(ow.backward, '_nan_guard', False):
            return
        backward, step = ow.backward, ow.step
        # AMP: inf gradients are the GradScaler's normal overflow signal (it
        # skips that step and lowers the scale), not a diverged run
        check_grads = self.check_grads and not hasattr(ow, 'loss_scaler')

        def guarded_backward(loss, **kwargs):
            if self._skip_this:  # a later term of an already bad iteration
                ow._inner_count += 1  # keep accumulation counting aligned
                return None
            bad_here = torch.is_tensor(loss) and not bool(
                torch.isfinite(loss.detach()).all())
            # every rank learns whether any rank is bad before any of them
            # back-propagates (DDP all-reduces gradients in backward)
            if _any_rank(bad_here, loss):
                if bad_here:
                    terms = (non_finite_terms(self._last_losses)
                             if self._last_losses else []) or ['loss']
                    self._bad(f'loss term(s) {terms} = {_fmt(loss)}')
                else:
                    self._bad('loss on another rank')
                ow._inner_count += 1
                return None
            return backward(loss, **kwargs)

        def guarded_step(**kwargs):
            if not self._skip_this and check_grads:
                bad = non_finite_tensors(
                    (n, p.grad) for n, p in self._named_params(ow))
                if _any_rank(bool(bad), next(iter(
                        self._model.parameters()), None)):
                    self._bad(f'gradients of {bad[:5]}'
                              f'{" ..." if len(bad) > 5 else ""}' if bad
                              else 'gradients on another rank')
            if self._skip_this:
                self._step_refused = True
                ow.optimizer.zero_grad()
                return None
            return step(**kwargs)

        guarded_backward._nan_guard = True
        ow._nan_guard = self  # read by UDASegmentor.train_step
        # models with their own train_step (UDASegmentor) read this to hand
        # a bad term to the guard instead of raising themselves
        guarded_backward._nan_guard_action = self.action
        ow.backward = guarded_backward
        ow.step = guarded_step

    def _named_params(self, ow):
        ids = {id(p) for g in ow.optimizer.param_groups for p in g['params']}
        return [(n, p) for n, p in self._model.named_parameters()
                if id(p) in ids]

    def _bad(self, what: str) -> None:
        msg = (f'NaNGuardHook: non-finite {what} at iteration '
               f'{self._iter + 1}')
        if self.action == 'stop':
            raise FloatingPointError(
                msg + '; stopped before the optimizer step, so the weights '
                'and the checkpoints are those of the last good iteration.')
        if not self._skip_this:
            self._skip_this = True
            print_log(msg + '; skipping this update (action="skip")',
                      logger='current', level=30)

    # ------------------------------------------------------ per iteration
    def before_train_iter(self, runner, batch_idx: int, data_batch=None):
        self._iter = runner.iter
        self._skip_this = False
        self._step_refused = False
        self._last_losses = None
        self._grads = {}
        if self.action == 'skip':
            # mid accumulation window: keep the gradients the window has so
            # far, to take back this iteration's part if it is skipped
            for ow in self._wrappers:
                k = getattr(ow, '_accumulative_counts', 1)
                if k > 1 and ow._inner_count % k:
                    self._grads[id(ow)] = {
                        id(p): p.grad.detach().clone()
                        for g in ow.optimizer.param_groups
                        for p in g['params'] if p.grad is not None
                    }
            # BN running statistics (and counters) are updated in the
            # forward pass, before any loss exists: keep a copy to undo a
            # bad batch
            self._buffers = {
                n: b.detach().clone()
                for n, b in self._model.named_buffers()
            }

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self._skip_this:
            with torch.no_grad():
                for n, b in self._model.named_buffers():
                    if n in self._buffers:
                        b.copy_(self._buffers[n])
                if not self._step_refused:  # the window goes on
                    for ow in self._wrappers:
                        saved = self._grads.get(id(ow), {})
                        for g in ow.optimizer.param_groups:
                            for p in g['params']:
                                p.grad = saved.get(id(p))
            self.skipped += 1
            self._in_a_row += 1
            if self._in_a_row >= self.max_skips:
                raise FloatingPointError(
                    f'NaNGuardHook: {self._in_a_row} iterations in a row '
                    f'had a non-finite loss or gradient (last: iteration '
                    f'{runner.iter + 1}); stopping (max_skips='
                    f'{self.max_skips}, {self.skipped} skipped in total)')
        else:
            self._in_a_row = 0
        runner.message_hub.update_scalar('train/nan_guard_skipped',
                                         self.skipped)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_checkpoint:
            return
        bad = non_finite_tensors(checkpoint.get('state_dict', {}).items())
        if bad:
            raise FloatingPointError(
                f'NaNGuardHook: refusing to write a checkpoint at iteration '
                f'{runner.iter + 1}: the model state has non-finite values '
                f'in {bad[:5]}; the previous checkpoint is kept')


def _any_rank(flag: bool, like: Optional[torch.Tensor] = None) -> bool:
    """``flag`` OR-ed over all ranks (itself when not distributed)."""
    from mmengine.dist import all_reduce, get_world_size
    if get_world_size() <= 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0],
                     device=like.device if torch.is_tensor(like) else 'cpu')
    all_reduce(t, op='sum')
    return bool(t.item() > 0)


def _fmt(t: torch.Tensor) -> str:
    return str(t.detach().float().cpu().flatten()[:4].tolist())
