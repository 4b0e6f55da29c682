"""EpochPartsSampler: every epoch sees a random 1/N of the data.

From the 1st-place solution of the 2021 driver-inattention detection
challenge (a YOLOv5 fork): with a large, redundant training set an "epoch"
of 1/N of the images gives N times more evaluation / checkpoint / schedule
points for the same compute, and a fresh random part every epoch.

Reference semantics are the pure functions below; the registered sampler
only adds rank, epoch and seed bookkeeping.
"""
import itertools
from typing import Iterator, Optional, Sequence, Sized

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmplugins.registry import register_module

__all__ = ['epoch_part_size', 'epoch_draw', 'rank_split', 'DrawSpec',
           'EpochPartsSampler']

# keeps this sampler's streams apart from other numpy users of the same seed
_STREAM_SALT = 0x0E90C4


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([_STREAM_SALT, seed % 2**32, stream])


def epoch_part_size(num_items: int, epoch_parts: int) -> int:
    """Number of items one epoch draws: ``num_items // epoch_parts``."""
    return num_items // epoch_parts


def epoch_draw(num_items: int, epoch_parts: int, epoch: int, seed: int,
               replacement: bool = False, shuffle: bool = True) -> np.ndarray:
    """Positions (into ``range(num_items)``) drawn for one epoch.

    * ``replacement=False``: the items are permuted once per *cycle* of
      ``epoch_parts`` epochs and epoch ``e`` takes part ``e % epoch_parts``
      of permutation ``e // epoch_parts``. The parts of a cycle are
      disjoint, so a cycle sees every item at most once and all but
      ``num_items % epoch_parts`` of them exactly once (which ones are left
      out changes with every cycle). ``shuffle=False`` keeps dataset order.
    * ``replacement=True``: each epoch independently draws
      ``num_items // epoch_parts`` positions uniformly with replacement
      (like ``torch.utils.data.RandomSampler(replacement=True)``), so an
      item may repeat within an epoch.

    The result depends only on the arguments: identical on every rank.
    """
    size = epoch_part_size(num_items, epoch_parts)
    if replacement:
        return _rng(seed, epoch).integers(0, num_items, size, dtype=np.int64)
    cycle, part = divmod(epoch, epoch_parts)
    if shuffle:
        order = _rng(seed, cycle).permutation(num_items)
    else:
        order = np.arange(num_items, dtype=np.int64)
    return order[part * size:(part + 1) * size]


def rank_split(draw: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """The share of ``rank``: every ``world_size``-th item from ``rank``.

    The tail ``len(draw) % world_size`` items are dropped so that every rank
    gets the same length (DDP needs equal batch counts) and the shares stay
    disjoint (no padding with repeats, unlike ``DefaultSampler``).
    """
    per_rank = len(draw) // world_size
    return draw[rank:per_rank * world_size:world_size]


class DrawSpec:
    """What a sampler draws, without the sampler: picklable, small, and a
    pure function of its fields, so a dataset copy in a loader worker can
    recompute any epoch's draw (see :class:`SubsetMixDataset`)."""

    def __init__(self, pool: np.ndarray, epoch_parts: int, seed: int,
                 replacement: bool, shuffle: bool, world_size: int) -> None:
        self.pool = pool
        self.epoch_parts = epoch_parts
        self.seed = seed
        self.replacement = replacement
        self.shuffle = shuffle
        self.world_size = world_size

    def epoch_pool(self, epoch: int) -> np.ndarray:
        """Sorted distinct dataset indices all ranks read in ``epoch``."""
        draw = epoch_draw(len(self.pool), self.epoch_parts, epoch, self.seed,
                          self.replacement, self.shuffle)
        per_rank = len(draw) // self.world_size
        return np.unique(self.pool[draw[:per_rank * self.world_size]])


@register_module('data_samplers')
class EpochPartsSampler(Sampler):
    """Sample a fresh random ``1 / epoch_parts`` of the dataset each epoch.

    Epoch ``e`` draws ``len(pool) // epoch_parts`` items (see
    :func:`epoch_draw` for the exact rule), where the pool is the whole
    dataset or ``indices``; the draw is split disjointly across ranks with
    equal per-rank length (the last ``draw % world_size`` items of a draw
    are skipped). ``set_epoch`` (called by mmengine's
    ``DistSamplerSeedHook``) selects the draw, so an epoch-based resume
    continues with the right epoch's part.

    Args:
        dataset (Sized): The dataset (passed by the Runner).
        epoch_parts (int): Split the pool into this many parts; each epoch
            sees one part. ``1`` = every epoch sees the whole pool (a plain
            shuffled epoch). Must be >= 1 and <= the pool size.
            Defaults to 1.
        replacement (bool): Draw each epoch independently *with*
            replacement instead of taking disjoint parts of a permutation.
            Defaults to False.
        shuffle (bool): Permute before splitting into parts. ``False``
            walks the parts in dataset order (debugging; requires
            ``replacement=False``). Defaults to True.
        infinite (bool): Yield forever, epoch after epoch, like mmengine's
            ``InfiniteSampler``; for ``IterBasedTrainLoop``. ``__len__``
            stays the per-epoch, per-rank length. Defaults to False.
        seed (int, optional): Random seed, identical on every rank. The
            Runner passes its own (``randomness.seed``); ``None`` syncs a
            random one across ranks. Defaults to None.
        indices (Sequence[int], optional): Sample only from these dataset
            indices (the pool). Defaults to None (all of them).

    Note:
        Mix transforms. Given a :class:`SubsetMixDataset`, the sampler
        publishes its :class:`DrawSpec` to it at construction, so mosaic /
        mixup partners come from the pool (or, ``partners='epoch'``, from
        this epoch's draw; then the sampler yields
        :class:`~mmplugins.datasets.subset_mix_dataset.EpochIndex`, an
        ``int`` that carries the epoch to the loader workers).

    Note:
        Resume. Epoch-based: the checkpoint stores the epoch and
        ``DistSamplerSeedHook`` calls ``set_epoch(epoch)``, so the resumed
        epoch uses exactly the draw it would have used. Iteration-based
        with ``infinite=True``: the sampler keeps no state of its own;
        ``IterBasedTrainLoop`` restores its iteration counter and advances
        the dataloader by that many batches, which replays this sampler's
        deterministic stream, so the next batch is the one the interrupted
        run would have read. Both need the same seed (set
        ``randomness=dict(seed=...)``: mmengine builds the sampler before
        it loads the checkpoint's seed), world size and batch size.
    """

    def __init__(self,
                 dataset: Sized,
                 epoch_parts: int = 1,
                 replacement: bool = False,
                 shuffle: bool = True,
                 infinite: bool = False,
                 seed: Optional[int] = None,
                 indices: Optional[Sequence[int]] = None) -> None:
        rank, world_size = get_dist_info()
        self.rank, self.world_size = rank, world_size
        self.dataset = dataset
        if indices is None:
            pool = np.arange(len(dataset), dtype=np.int64)
            pool_name = f'dataset ({type(dataset).__name__})'
        else:
            pool = np.asarray(indices, dtype=np.int64).reshape(-1)
            pool_name = 'subset'
            if len(pool) and (pool.min() < 0 or pool.max() >= len(dataset)):
                raise ValueError(
                    f'{type(self).__name__}: indices must lie in '
                    f'[0, {len(dataset)}), got min {pool.min()} max '
                    f'{pool.max()}')
        if isinstance(epoch_parts, bool) or not isinstance(
                epoch_parts, (int, np.integer)):
            raise ValueError(f'{type(self).__name__}: epoch_parts must be an '
                             f'int >= 1, got {epoch_parts!r}')
        if epoch_parts < 1:
            raise ValueError(f'{type(self).__name__}: epoch_parts must be >= '
                             f'1, got epoch_parts={epoch_parts}')
        if len(pool) == 0:
            raise ValueError(f'{type(self).__name__}: the {pool_name} is '
                             'empty, nothing to sample')
        if epoch_parts > len(pool):
            raise ValueError(
                f'{type(self).__name__}: epoch_parts={epoch_parts} is larger '
                f'than the {pool_name} ({len(pool)} items); an epoch would '
                'be empty')
        per_rank = epoch_part_size(len(pool), epoch_parts) // world_size
        if per_rank == 0:
            raise ValueError(
                f'{type(self).__name__}: an epoch draws '
                f'{epoch_part_size(len(pool), epoch_parts)} items '
                f'({len(pool)} // epoch_parts={epoch_parts}), fewer than '
                f'world_size={world_size}; lower epoch_parts')
        if replacement and not shuffle:
            raise ValueError(f'{type(self).__name__}: replacement=True draws '
                             'at random and needs shuffle=True')
        self.pool = pool
        self.pool_name = pool_name
        self.epoch_parts = int(epoch_parts)
        self.replacement = replacement
        self.shuffle = shuffle
        self.infinite = infinite
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        self.num_samples = per_rank
        # a SubsetMixDataset takes mosaic / mixup partners from our pool
        bind = getattr(dataset, 'bind_sampler_pool', None)
        self.tag_epoch = bool(bind(self.draw_spec())) if callable(bind) \
            else False

    def draw_spec(self) -> DrawSpec:
        """The draw as a small picklable object (pool, parts, seed, ...)."""
        return DrawSpec(self.pool, self.epoch_parts, self.seed,
                        self.replacement, self.shuffle, self.world_size)

    def indices_of_epoch(self, epoch: int, rank: Optional[int] = None,
                         world_size: Optional[int] = None) -> np.ndarray:
        """Dataset indices ``rank`` reads in ``epoch`` (defaults: this
        process). Lets tests and tools inspect any rank without launching
        processes."""
        rank = self.rank if rank is None else rank
        world_size = self.world_size if world_size is None else world_size
        draw = epoch_draw(len(self.pool), self.epoch_parts, epoch, self.seed,
                          self.replacement, self.shuffle)
        return self.pool[rank_split(draw, rank, world_size)]

    def _epoch_iter(self, epoch: int) -> Iterator[int]:
        indices = self.indices_of_epoch(epoch).tolist()
        if not self.tag_epoch:
            return iter(indices)
        from mmplugins.datasets.subset_mix_dataset import EpochIndex
        return (EpochIndex(i, epoch) for i in indices)

    def __iter__(self) -> Iterator[int]:
        if not self.infinite:
            return self._epoch_iter(self.epoch)
        return self._infinite_iter(self.epoch)

    def _infinite_iter(self, start_epoch: int) -> Iterator[int]:
        for epoch in itertools.count(start_epoch):
            yield from self._epoch_iter(epoch)

    def __len__(self) -> int:
        """Per-rank number of samples of one epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Select the draw of ``epoch`` (called by ``DistSamplerSeedHook``).

        With ``infinite=True`` it sets the epoch the stream starts from.
        """
        self.epoch = epoch

    @property
    def epoch_size(self) -> int:
        """Items per epoch over all ranks."""
        return self.num_samples * self.world_size

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(pool={len(self.pool)}, '
                f'epoch_parts={self.epoch_parts}, per_rank={len(self)}, '
                f'world_size={self.world_size}, '
                f'replacement={self.replacement}, infinite={self.infinite}, '
                f'seed={self.seed})')

