"""SubsetMixDataset: Mosaic / MixUp partners from the sampler's subset.

mmyolo's mix transforms (``Mosaic``, ``Mosaic9``, ``YOLOv5MixUp``,
``YOLOXMixUp``) take their extra images from ``results['dataset']``, which
mmyolo's datasets set to *the whole dataset*: with a ``DietSampler`` three
of the four images of every mosaic are drawn from all images, mostly from
outside the diet. In the reference solution (a YOLOv5 fork) the diet *was* the
training set, so its ``load_mosaic`` drew the three partners from the diet.

This wrapper restores that: it hands the pipeline a read-only view of the
sampler's pool instead of the dataset, and refetches a sample the pipeline
drops (``None``) from the same pool. The sampler publishes its pool when it
is built (the Runner builds the sampler with this dataset, before any loader
worker starts), so every worker's copy of the dataset, persistent or not,
carries it.
"""
import copy
from typing import Any, Optional, Union

import numpy as np
from mmengine.logging import print_log
from mmengine.registry import DATASETS

from mmplugins.registry import register_module

__all__ = ['EpochIndex', 'PoolView', 'SubsetMixDataset']

_PARTNERS = ('subset', 'epoch')


class EpochIndex(int):
    """A dataset index that also says which epoch's draw it belongs to.

    Yielded by :class:`~mmplugins.datasets.samplers.EpochPartsSampler` (and
    ``DietSampler``) only for a :class:`SubsetMixDataset` with
    ``partners='epoch'``: the index is the one channel from the sampler (main
    process) to the loader workers, which hold their own copy of the dataset
    and never see ``set_epoch``. It is an ``int`` everywhere else.
    """

    def __new__(cls, value: int, epoch: int):
        obj = super().__new__(cls, value)
        obj.epoch = int(epoch)
        return obj

    def __reduce__(self):
        return (EpochIndex, (int(self), self.epoch))

    def __repr__(self):
        return f'EpochIndex({int(self)}, epoch={self.epoch})'


class PoolView:
    """What a mix transform sees as ``results['dataset']``: ``len`` and
    ``get_data_info(i)`` over ``pool`` (dataset indices)."""

    def __init__(self, dataset, pool: np.ndarray) -> None:
        self.dataset = dataset
        self.pool = pool

    def __len__(self) -> int:
        return len(self.pool)

    def get_data_info(self, i: int) -> dict:
        return self.dataset.get_data_info(int(self.pool[i]))

    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo


@register_module('datasets')
class SubsetMixDataset:
    """Wrap a training dataset so mix transforms draw from the sampler's pool.

    Example (mmyolo YOLOv5 with the diet)::

        train_dataloader = dict(
            dataset=dict(
                type='SubsetMixDataset',
                dataset=dict(type='YOLOv5CocoDataset', ..., pipeline=[
                    ..., dict(type='Mosaic', ...), ...])),
            sampler=dict(type='DietSampler', rules=[...], epoch_parts=15))

    Args:
        dataset (dict | Dataset): The dataset (mmyolo's
            ``YOLOv5CocoDataset`` or any mmengine ``BaseDataset`` whose
            pipeline reads ``results['dataset']``).
        partners (str): Which images a mosaic / mixup partner (and a
            refetch after a dropped sample) is drawn from:

            - ``'subset'`` (default, the reference): the sampler's whole
              pool, i.e. the diet subset (``DietSampler``) or the
              ``indices`` of an ``EpochPartsSampler``.
            - ``'epoch'``: only the images the sampler draws in the current
              epoch (all ranks together), i.e. the ``1 / epoch_parts`` part
              of the pool. The sampler then yields :class:`EpochIndex`
              indices that carry the epoch to the workers.
        lazy_init (bool): Defer ``dataset.full_init()``. Defaults to False.

    Note:
        * Without a pool-publishing sampler (``DefaultSampler``) partners
          come from the whole dataset, as without the wrapper; a warning
          says so once per process.
        * mmyolo's ``use_cached=True`` mix transforms draw from their
          cache, not from the dataset: it holds previous samples (of the
          previous epoch, too); keep ``use_cached=False`` (mmyolo's YOLOv5
          default) with this wrapper.
        * mmdet's ``MultiImageMixDataset`` path (mmdet ``Mosaic`` /
          ``MixUp``) is not covered: it picks partners itself.
    """

    def __init__(self,
                 dataset: Union[dict, Any],
                 partners: str = 'subset',
                 lazy_init: bool = False) -> None:
        if partners not in _PARTNERS:
            raise ValueError(f'SubsetMixDataset: partners must be one of '
                             f'{_PARTNERS}, got {partners!r}')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        for attr in ('get_data_info', 'pipeline', 'metainfo'):
            if not hasattr(dataset, attr):
                raise TypeError(
                    f'SubsetMixDataset: the wrapped dataset '
                    f'{type(dataset).__name__} has no `{attr}`; expected an '
                    'mmengine BaseDataset (e.g. mmyolo YOLOv5CocoDataset)')
        self.dataset = dataset
        self.partners = partners
        self.max_refetch = getattr(dataset, 'max_refetch', 1000)
        self._spec = None
        self._cached = (None, None)
        self._warned = False
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    # ------------------------------------------------ dataset protocol
    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        self._fully_initialized = True

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def test_mode(self) -> bool:
        return getattr(self.dataset, 'test_mode', False)

    @property
    def pipeline(self):
        return self.dataset.pipeline

    def __len__(self) -> int:
        return len(self.dataset)

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(int(idx))

    def get_cat_ids(self, idx: int) -> list:
        return self.dataset.get_cat_ids(int(idx))

    # ------------------------------------------------ the sampler's side
    def bind_sampler_pool(self, spec) -> bool:
        """Called by the sampler at construction with its draw spec (an
        object with ``pool`` and ``epoch_pool(epoch)``). Returns whether the
        sampler must yield :class:`EpochIndex` (``partners='epoch'``)."""
        self._spec = spec
        self._cached = (None, None)
        return self.partners == 'epoch'

    def partner_pool(self, epoch: Optional[int] = None
                     ) -> Optional[np.ndarray]:
        """Dataset indices partners are drawn from (``None``: all)."""
        if self._spec is None:
            return None
        if self.partners == 'subset':
            return self._spec.pool
        if epoch is None:
            raise RuntimeError(
                "SubsetMixDataset(partners='epoch') got an index without its "
                'epoch; use it with an EpochPartsSampler / DietSampler (they '
                'yield EpochIndex)')
        if self._cached[0] != epoch:
            self._cached = (epoch, self._spec.epoch_pool(epoch))
        return self._cached[1]

    # ------------------------------------------------ loading
    def __getitem__(self, idx: int) -> Any:
        if not self._fully_initialized:
            self.full_init()
        if self.test_mode:
            return self.dataset[int(idx)]
        if self._spec is None and not self._warned:
            self._warned = True
            print_log(
                'SubsetMixDataset: no sampler published a pool (use '
                'DietSampler or EpochPartsSampler); mix partners come from '
                'the whole dataset', logger='current', level=30)
        pool = self.partner_pool(getattr(idx, 'epoch', None))
        view = self.dataset if pool is None else PoolView(self.dataset, pool)
        idx = int(idx)
        for _ in range(self.max_refetch + 1):
            data_info = self.dataset.get_data_info(idx)
            data_info['dataset'] = view
            data = self.dataset.pipeline(data_info)
            if data is not None:
                return data
            # like BaseDataset._rand_another, but inside the pool
            idx = (int(np.random.randint(0, len(self.dataset))) if pool is
                   None else int(pool[np.random.randint(0, len(pool))]))
        raise RuntimeError(
            f'SubsetMixDataset: the pipeline dropped {self.max_refetch + 1} '
            'samples in a row; check the dataset and its pipeline')

    def __repr__(self) -> str:
        pool = None if self._spec is None else len(self._spec.pool)
        return (f'SubsetMixDataset(dataset={type(self.dataset).__name__}, '
                f'len={len(self)}, partners={self.partners!r}, pool={pool})')
