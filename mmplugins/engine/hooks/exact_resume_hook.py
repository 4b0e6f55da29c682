"""Exact resume: a resumed run continues the interrupted one bit for bit.

mmengine resumes weights, optimizer, LR schedule, message hub and (for
``IterBasedTrainLoop``) the position in the data stream -- it replays the
dataloader for the iterations already trained, so the sampler and the
dataloader workers (seeded by ``(seed, rank, worker id)``) are back exactly
where they were. What it does not restore is the *main process* random
state: a resumed run draws dropout masks, DACS class-mix choices, MIC block
masks, strong-augmentation parameters (and, with ``num_workers=0``, the
pipeline's random crops) from a generator that has seen a different history
(model init, checkpoint loading, validation runs).

Rather than saving a generator state at checkpoint time (it would still
differ from the uninterrupted run whenever validation or logging consumed
random numbers after the save), this hook makes the main-process random
state a *function of the position in the data stream*: right before every
batch is fetched it reseeds ``random``, ``numpy.random`` and ``torch`` (CPU
and CUDA) with :func:`step_seed` ``(seed, rank, epoch, batch)``. The
uninterrupted and the resumed run then draw the same numbers for batch ``n``
whatever happened before. The checkpoint additionally records the data
stream geometry (world size, batch size, workers, seed) and a resume with a
different one is refused, since the replay would not reproduce the stream.
"""
import hashlib
import random
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmplugins.registry import register_module

#: checkpoint key holding the stream geometry recorded by the hook
CKPT_KEY = 'exact_resume'


def step_seed(seed: int, rank: int, epoch: int, batch: int) -> int:
    """The 32-bit seed of batch ``batch`` of ``epoch`` on ``rank``.

    A hash, not ``seed + batch``: consecutive steps (and runs with seeds
    ``s`` and ``s + 1``) must not share streams.
    """
    key = f'{int(seed)}/{int(rank)}/{int(epoch)}/{int(batch)}'.encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], 'little')


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy.random`` and ``torch`` (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def stream_geometry(runner) -> dict:
    """What must be equal for a replayed data stream to be the same one."""
    loader = runner.train_dataloader
    _, world_size = get_dist_info()
    return dict(
        seed=int(runner.seed),
        world_size=int(world_size),
        batch_size=getattr(loader, 'batch_size', None),
        num_workers=int(getattr(loader, 'num_workers', 0)))


class _ReseedingIterator:
    """Wraps the loop's batch iterator; reseeds before every ``next``."""

    def __init__(self, inner, seed: int, rank: int, epoch: int = 0):
        self.inner = inner
        self.seed, self.rank, self.epoch = seed, rank, epoch
        self.batch = 0

    def __iter__(self):
        return self

    def __next__(self):
        seed_everything(step_seed(self.seed, self.rank, self.epoch,
                                  self.batch))
        self.batch += 1
        return next(self.inner)


class _ReseedingLoader:
    """Proxy of an epoch-based loop's dataloader: every epoch's iterator
    reseeds before each batch; everything else is the DataLoader's."""

    def __init__(self, loader, hook: 'ExactResumeHook'):
        self._loader = loader
        self._hook = hook

    def __iter__(self) -> Iterator:
        hook = self._hook
        epoch = hook._runner_epoch()
        # iter() of a DataLoader draws its base seed from the global torch
        # generator: seed it from the epoch first
        seed_everything(step_seed(hook._seed, hook._rank, epoch, -1))
        return _ReseedingIterator(iter(self._loader), hook._seed,
                                  hook._rank, epoch)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name):
        return getattr(self._loader, name)


@register_module('hooks')
class ExactResumeHook(Hook):
    """Make the training randomness a function of (seed, rank, position).

    With this hook a run killed at any point and resumed with ``--resume``
    (from the last checkpoint) logs exactly the losses an uninterrupted run
    logs, iteration by iteration, and two runs with the same seed are
    bitwise identical on CPU (on GPU see ``docs/reliability.md``: cuDNN
    flags and non-deterministic kernels).

    Example::

        custom_hooks = [dict(type='ExactResumeHook')]
        randomness = dict(seed=0, deterministic=True)

    Args:
        strict (bool): Refuse (``ValueError``) to resume when the world size,
            batch size, number of dataloader workers or seed differ from the
            checkpoint's -- the replayed data stream would then be another
            one. ``False`` only warns. Defaults to True.

    Note:
        * ``IterBasedTrainLoop``: exact for any ``num_workers`` and
          ``persistent_workers``. mmengine replays the dataloader for the
          iterations already trained (loading, not training, those batches)
          so the sampler position and the workers' random state are those
          of the interrupted run.
        * ``EpochBasedTrainLoop``: a run resumes at the start of the epoch
          after the last checkpoint. Exact with ``num_workers=0`` or
          ``persistent_workers=False``; persistent workers keep random state
          from the epochs before the kill, which a resumed run cannot
          rebuild (a warning says so).
        * Set a fixed ``randomness=dict(seed=...)``: with ``seed=None`` the
          sampler seed is drawn at start-up, before the checkpoint is read,
          and the resume is refused (``strict``) as the seeds differ.
        * The hook changes the random streams (each batch gets its own seed),
          so a run with it does not reproduce a run without it.
    """

    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = True) -> None:
        if not isinstance(strict, bool):
            raise ValueError(f'strict must be a bool, but got strict: '
                             f'{strict!r}')
        self.strict = strict
        self._seed: Optional[int] = None
        self._rank = 0
        self._runner = None
        self._resumed_geometry: Optional[dict] = None

    def _runner_epoch(self) -> int:
        return int(self._runner.epoch)

    def before_run(self, runner) -> None:
        # runs before load_or_resume: the seed everything was built with
        self._seed = int(runner.seed)
        self._rank, _ = get_dist_info()
        self._runner = runner

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get(CKPT_KEY)
        if saved is None:
            print_log(
                'ExactResumeHook: the checkpoint was not written with '
                'ExactResumeHook; the resumed randomness will not match the '
                'interrupted run before it', logger='current', level=30)
            return
        self._resumed_geometry = saved.get('geometry')

    def before_train(self, runner) -> None:
        # called after load_or_resume, before mmengine replays the stream.
        # The sampler and datasets were built with the seed of before_run;
        # mmengine switches runner.seed to the checkpoint's on resume, which
        # would hide a mismatch (randomness.seed=None draws a new one)
        now = dict(stream_geometry(runner), seed=self._seed)
        if self._resumed_geometry is not None:
            diff = {k: (v, now.get(k))
                    for k, v in self._resumed_geometry.items()
                    if now.get(k) != v}
            if diff:
                msg = ('ExactResumeHook: the data stream of the checkpoint '
                       'differs from this run (checkpoint, now): '
                       f'{diff}; the resumed run cannot continue the '
                       'interrupted one exactly')
                if self.strict:
                    raise ValueError(msg + ' (strict=True)')
                print_log(msg, logger='current', level=30)
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):  # IterBasedTrainLoop
            if not isinstance(loop.dataloader_iterator, _ReseedingIterator):
                loop.dataloader_iterator = _ReseedingIterator(
                    loop.dataloader_iterator, self._seed, self._rank)
        else:
            if (runner.epoch > 0 and now['num_workers'] > 0
                    and getattr(loop.dataloader, 'persistent_workers',
                                False)):
                print_log(
                    'ExactResumeHook: epoch-based resume with persistent '
                    'dataloader workers: the workers\' random state of the '
                    'interrupted run is lost, so data augmentation after '
                    'the resume differs. Use num_workers=0 or '
                    'persistent_workers=False for an exact resume.',
                    logger='current', level=30)
            if not isinstance(loop.dataloader, _ReseedingLoader):
                loop.dataloader = _ReseedingLoader(loop.dataloader, self)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CKPT_KEY] = dict(geometry=stream_geometry(runner))
