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
        ``UDASegmentor`` checks every loss term itself and raises before
        its backward (naming the term); with ``'skip'`` it hands the bad
        term to this hook instead, which drops the whole UDA iteration (all
        terms' gradients, the step) and restores the buffers, including the
        teacher's BN statistics and the UDA iteration counter. Under DDP a
        skip on one rank only would leave the other ranks waiting in the
        gradient all-reduce: use ``'stop'`` for multi-process runs.
        The loss term names come from the dict of losses the model returns
        (via ``parse_losses``); a model with its own ``train_step`` gets the
        generic name ``loss``.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 action: str = 'stop',
                 max_skips: int = 10,
                 check_grads: bool = True,
                 check_checkpoint: bool = True) -> None:
        if action not in ('stop', 'skip'):
            raise ValueError(f"action must be 'stop' or 'skip', but got "
                             f'action: {action!r}')
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
        self._model = None

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
        for ow in wrappers:
            self._wrap(ow)

    def _wrap(self, ow) -> None:
        if getattr(ow.backward, '_nan_guard', False):
            return
        backward, step = ow.backward, ow.step
        # AMP: inf gradients are the GradScaler's normal overflow signal (it
        # skips that step and lowers the scale), not a diverged run
        check_grads = self.check_grads and not hasattr(ow, 'loss_scaler')

        def guarded_backward(loss, **kwargs):
            if torch.is_tensor(loss) and not torch.isfinite(loss).all():
                terms = (non_finite_terms(self._last_losses)
                         if self._last_losses else []) or ['loss']
                self._bad(f'loss term(s) {terms} = {_fmt(loss)}')
                ow._inner_count += 1  # keep accumulation counting aligned
                return None
            if self._skip_this:  # a later term of an already bad iteration
                ow._inner_count += 1
                return None
            return backward(loss, **kwargs)

        def guarded_step(**kwargs):
            if not self._skip_this and check_grads:
                bad = non_finite_tensors(
                    (n, p.grad) for n, p in self._named_params(ow))
                if bad:
                    self._bad(f'gradients of {bad[:5]}'
                              f'{" ..." if len(bad) > 5 else ""}')
            if self._skip_this:
                ow.optimizer.zero_grad()
                return None
            return step(**kwargs)

        guarded_backward._nan_guard = True
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
        self._last_losses = None
        if self.action == 'skip':
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
            self.skipped += 1
            self._in_a_row += 1
            if self._in_a_row >= self.max_skips:
                raise FloatingPointError(
                    f'NaNGuardHook: {self._in_a_row} iterations in a row '
                    f'had a non-finite loss or gradient (last: iteration '
                    f'{runner.iter + 1}); stopping (max_skips='
                    f'{self.max_skips})')
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


def _fmt(t: torch.Tensor) -> str:
    return str(t.detach().float().cpu().flatten()[:4].tolist())
