"""Inject the faults a long training run meets, at a chosen iteration.

For testing the recovery machinery (``ExactResumeHook``,
``AtomicCheckpointHook``, ``NaNGuardHook``) -- and your cluster setup --
deterministically: ``bench/faults.py`` and ``tests/reliability/`` use it.
Never put it in a real training config.
"""
import os
import signal
from typing import Optional

import torch
from mmengine.hooks import Hook

from mmplugins.registry import register_module


def _poison(value):
    """Turn every floating tensor in ``value`` into NaN (same structure)."""
    if torch.is_tensor(value):
        return value * float('nan') if value.is_floating_point() else value
    if isinstance(value, dict):
        return type(value)({k: _poison(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_poison(v) for v in value)
    return value


@register_module('hooks')
class FaultInjectionHook(Hook):
    """Kill the process, corrupt a checkpoint write or feed NaN inputs.

    Iterations are 1-based, as in the log (``Iter(train) [k/...]``).

    Args:
        kill_after_iter (int, optional): ``SIGKILL`` this process right
            after iteration ``k`` has stepped the weights, before that
            iteration's checkpoint (if any) is written: the work since the
            last checkpoint is lost, as in a pre-emption.
        kill_during_save_at_iter (int, optional): ``SIGKILL`` this process
            in the middle of writing the checkpoint of iteration ``k``
            (after half of its bytes reached the file).
        nan_at_iter (int, optional): Multiply the preprocessed inputs of
            iteration ``k`` by NaN, so its loss is NaN.
        nan_rank (int, optional): With ``nan_at_iter``, poison only this
            rank's inputs (a fault on one GPU of a multi-process run).
            Defaults to None (every rank).
        signal_name (str): Signal of the kills. Defaults to ``'SIGKILL'``
            (no handler, no cleanup: the worst case).
    """

    priority = 'HIGHEST'

    def __init__(self,
                 kill_after_iter: Optional[int] = None,
                 kill_during_save_at_iter: Optional[int] = None,
                 nan_at_iter: Optional[int] = None,
                 nan_rank: Optional[int] = None,
                 signal_name: str = 'SIGKILL') -> None:
        for name, v in (('kill_after_iter', kill_after_iter),
                        ('kill_during_save_at_iter',
                         kill_during_save_at_iter),
                        ('nan_at_iter', nan_at_iter)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f'{name} must be None or an int >= 1, but '
                                 f'got {name}: {v!r}')
        if not hasattr(signal, signal_name):
            raise ValueError(f'unknown signal_name: {signal_name!r}')
        self.kill_after_iter = kill_after_iter
        self.kill_during_save_at_iter = kill_during_save_at_iter
        self.nan_at_iter = nan_at_iter
        self.nan_rank = nan_rank
        self.signal = getattr(signal, signal_name)
        self._handle = None

    def _kill(self):
        os.kill(os.getpid(), self.signal)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        from mmengine.dist import get_rank
        if self.nan_at_iter == runner.iter + 1 and self.nan_rank in (
                None, get_rank()):
            model = runner.model.module if hasattr(
                runner.model, 'module') else runner.model
            self._handle = model.data_preprocessor.register_forward_hook(
                lambda m, args, out: _poison(out))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self.kill_after_iter == runner.iter + 1:
            self._kill()

    def before_save_checkpoint(self, runner, checkpoint):
        if self.kill_during_save_at_iter != runner.iter + 1:
            return
        from mmengine.fileio.backends.local_backend import LocalBackend
        hook = self

        def put(backend, obj, filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            hook._kill()

        LocalBackend.put = put
