"""Checkpoints that a kill can never leave half-written for resume.

mmengine's ``CheckpointHook`` writes ``iter_N.pth`` in place and, with
``max_keep_ckpts``, deletes the oldest checkpoint *before* writing the new
one. A kill (pre-emption, OOM killer, Ctrl-C twice) while ``torch.save``
runs leaves a truncated ``iter_N.pth`` that ``last_checkpoint`` may already
name -- and with ``max_keep_ckpts=1`` no complete checkpoint at all.

:class:`AtomicCheckpointHook` is a drop-in replacement:

1. the checkpoint is written to a hidden temporary file in the same folder,
   flushed to disk, then renamed over the final name (``os.replace`` is
   atomic on POSIX and Windows);
2. ``last_checkpoint`` is updated the same way, only after (1);
3. old checkpoints are deleted only after (2);
4. before a resume, the checkpoint ``last_checkpoint`` names is verified
   (:func:`checkpoint_is_complete`); a damaged one (e.g. written by the stock
   hook) is skipped with a warning for the newest complete one.
"""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmplugins.registry import register_module


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file."""
    tmp = osp.join(osp.dirname(path) or '.',
                   f'.{osp.basename(path)}.tmp-{os.getpid()}')
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(osp.dirname(path) or '.')


def _fsync_dir(path: str) -> None:
    try:  # the rename itself must reach the disk; not possible on Windows
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def checkpoint_is_complete(path: str) -> Tuple[bool, str]:
    """Whether ``path`` is a complete ``torch.save`` file.

    ``torch.save`` writes a zip archive whose central directory comes last:
    a truncated file has none, and a damaged one fails the CRC check of its
    members. Reading the file once is much cheaper than a training step.

    Returns:
        tuple[bool, str]: ``(ok, reason)``; ``reason`` is ``''`` when ok.
    """
    if not osp.isfile(path):
        return False, 'file does not exist'
    if osp.getsize(path) == 0:
        return False, 'file is empty'
    if not zipfile.is_zipfile(path):
        return False, ('not a complete torch.save archive (truncated, or the '
                       'legacy non-zip format)')
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return False, f'damaged archive: {e}'
    if bad is not None:
        return False, f'CRC error in member {bad!r}'
    return True, ''


def _candidates(folder: str, filename_tmpl: str) -> List[Tuple[int, str]]:
    """``(step, path)`` of files matching ``filename_tmpl``, newest first."""
    pattern = re.compile('^' + re.escape(filename_tmpl).replace(
        re.escape('{}'), r'(\d+)') + '$')
    found = []
    for name in os.listdir(folder) if osp.isdir(folder) else []:
        m = pattern.match(name)
        if m:
            found.append((int(m.group(1)), osp.join(folder, name)))
    return sorted(found, reverse=True)


def newest_complete_checkpoint(folder: str,
                               filename_tmpl: str = 'iter_{}.pth'
                               ) -> Optional[str]:
    """The newest complete checkpoint in ``folder`` (None if there is
    none)."""
    for _, path in _candidates(folder, filename_tmpl):
        if checkpoint_is_complete(path)[0]:
            return path
    return None


@register_module('hooks')
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints are written atomically.

    Same arguments and behaviour as mmengine's
    :class:`~mmengine.hooks.CheckpointHook` (``interval``, ``by_epoch``,
    ``max_keep_ckpts``, ``save_last``, ``save_best``, ...), plus:

    * ``iter_N.pth`` / ``epoch_N.pth`` appear under their name only once
      complete; ``last_checkpoint`` names a complete file; old checkpoints
      are removed only after the new one is in place;
    * on ``--resume`` (auto), a damaged latest checkpoint is replaced by the
      newest complete one with a warning; an explicitly given damaged
      checkpoint is an error naming the file.

    Example::

        default_hooks = dict(checkpoint=dict(
            type='AtomicCheckpointHook', by_epoch=False, interval=500,
            max_keep_ckpts=2))

    Args:
        verify_on_resume (bool): Check the checkpoint before resuming.
            Defaults to True.
        **kwargs: Arguments of ``CheckpointHook``.

    Note:
        Atomicity needs a local (or POSIX-like network) file system; for
        other backends (``backend_args`` of petrel/http) the stock
        behaviour is kept. ``save_best`` checkpoints are written by the
        parent class as before (they are not what ``--resume`` reads).
    """

    def __init__(self, *args, verify_on_resume: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.verify_on_resume = verify_on_resume

    def _local(self) -> bool:
        backend = getattr(self, 'file_backend', None)
        return type(backend).__name__ in ('LocalBackend', 'HardDiskBackend')

    # ------------------------------------------------------------- resume
    def before_run(self, runner) -> None:
        # runs before Runner.load_or_resume
        super().before_run(runner)
        if not (self.verify_on_resume and runner._resume):
            return
        if runner._load_from is not None:  # explicit --resume PATH
            path = str(runner._load_from)
            if '://' in path:
                return
            ok, why = checkpoint_is_complete(path)
            if not ok:
                raise ValueError(
                    f'AtomicCheckpointHook: cannot resume from {path}: {why}. '
                    'Give another checkpoint, or `--resume` without a path to '
                    'pick the newest complete one.')
            return
        last_file = osp.join(runner.work_dir, 'last_checkpoint')
        if not osp.isfile(last_file):
            return
        with open(last_file) as f:
            latest = f.read().strip()
        ok, why = checkpoint_is_complete(latest)
        if ok:
            return
        folder = osp.dirname(latest) or runner.work_dir
        fallback = newest_complete_checkpoint(folder, self.filename_tmpl)
        if fallback is None:
            raise ValueError(
                f'AtomicCheckpointHook: the latest checkpoint {latest} is '
                f'unusable ({why}) and {folder} holds no other complete '
                f'checkpoint matching {self.filename_tmpl!r}')
        print_log(
            f'AtomicCheckpointHook: the latest checkpoint {latest} is '
            f'unusable ({why}); resuming from {fallback} instead',
            logger='current', level=30)
        if is_main_process():
            atomic_write_text(last_file, fallback)

    # --------------------------------------------------------------- save
    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        # the list of kept checkpoints goes into the message hub (and so into
        # the checkpoint) before saving, as in the parent; the files leave
        # only once the new checkpoint is in place
        stale = self._update_keep_list(runner, step)
        ckpt_filename = self.filename_tmpl.format(step)
        final = self.file_backend.join_path(self.out_dir, ckpt_filename)
        tmp_name = f'.{ckpt_filename}.tmp-{os.getpid()}'
        runner.save_checkpoint(
            self.out_dir,
            tmp_name,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        self.last_ckpt = final
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        if not is_main_process():
            return
        tmp = self.file_backend.join_path(self.out_dir, tmp_name)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.out_dir)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'),
                          final)
        for old in stale:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)

    def _update_keep_list(self, runner, step) -> list:
        """Add ``step`` to the kept checkpoints; return the steps to drop."""
        if self.max_keep_ckpts <= 0:
            return []
        stale = []
        if not self.keep_ckpt_ids or self.keep_ckpt_ids[-1] != step:
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return stale
