"""Unsupervised domain adaptation dataset: (source, target) pairs.

Each item is one labelled source sample plus one unlabelled target sample,
ready for a UDA segmentor (``UDASegmentor`` / ``MIC``): the source packed
dict as is (``inputs``, ``data_samples``, maybe ``dist_inputs``,
``dist_data_samples``) and the target packed dict with every key prefixed
``target_`` (``target_inputs``, ``target_data_samples``). With
``rare_class_sampling`` the source sample is drawn by rare class sampling
(:mod:`mmplugins.datasets.rare_class_sampling`) instead of by index.
"""
import copy
import logging
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.logging import print_log

from mmplugins.registry import register_module
from .class_stats import ClassStats, compute_class_stats
from .crop_split import CropSplitPipeline
from .rare_class_sampling import RareClassSampler
from .sync_crop import check_sync_crop_size, synchronized_crop
from .transforms.valid_pseudo_mask import (MARGINS_KEY, add_valid_pseudo_mask,
                                           check_pipeline)

_RCS_KEYS = ('class_temp', 'min_pixels', 'min_crop_ratio', 'max_retries',
             'retry', 'stats_cache', 'nproc')
_RCS_RETRY = ('crop', 'pipeline')


def _dataset_location(dataset) -> str:
    """Human-readable 'where' of an mmseg dataset, for error messages."""
    prefix = getattr(dataset, 'data_prefix', None) or {}
    where = prefix.get('img_path') or getattr(dataset, 'ann_file', '') or \
        getattr(dataset, 'data_root', None)
    return repr(where) if where else f'<{type(dataset).__name__}>'


@register_module('datasets', toolboxes=('mmseg', ))
class UDADataset:
    """Pairs of a labelled source and an unlabelled target sample.

    Args:
        source (dict | Dataset): Source (labelled) dataset, a config built
            with mmseg's ``DATASETS`` (with its own pipeline, ending in
            ``PackSegInputs`` or ``PackDualBranchSegInputs``) or a built
            dataset.
        target (dict | Dataset): Target dataset, likewise (labels not
            needed; its pipeline should not load annotations). A config may
            hold the reference's (HRDA) ``crop_pseudo_margins=[top, bottom,
            left, right]``: pseudo-labels within that many pixels of the
            full target image's borders get weight 0. The mask is built right
            after ``LoadImageFromFile``, transformed like a label and packed
            as ``target_data_samples.valid_pseudo_mask`` (see
            :mod:`mmplugins.datasets.transforms.valid_pseudo_mask`).
        sync_crop_size (tuple[int, int], optional): HRDA's key: crop the
            packed source and target sample (images, labels, pseudo-label
            masks) at the SAME random ``(h, w)`` box after their pipelines
            (see :mod:`mmplugins.datasets.sync_crop`). ``None`` (default):
            each keeps its pipeline's own crop.
        rare_class_sampling (dict, optional): ``None`` (default) = off: item
            ``i`` is ``source[i]``. A dict turns RCS on and ignores the
            index; keys:

            - ``class_temp`` (float): softmax temperature T. Default 0.01.
            - ``min_pixels`` (int): an image is used for class c if it holds
              ``>= min_pixels`` of c. Default 3000 (DAFormer, 1024x512
              images); the 256x512 demo needs ~200 (see
              ``tools/analysis/class_stats.py``).
            - ``min_crop_ratio`` (float): re-crop until the crop holds
              ``> min_pixels * min_crop_ratio`` pixels of c (absolute, as
              in DAFormer). 0 = no re-cropping. Default 0.5.
            - ``max_retries`` (int): re-crops at most. Default 10.
            - ``retry`` (str): what a re-crop re-runs. ``'crop'`` (default):
              the source pipeline is split at its random crop (mmseg
              ``RandomCrop``): decode/resize run once, only the crop is
              retried, the transforms after it (flip, ``DualBranchAug``,
              pack) run once on the kept crop; a pipeline with no crop (or
              several) falls back to ``'pipeline'``, logged once. See
              :mod:`mmplugins.datasets.crop_split`. ``'pipeline'``:
              DAFormer's loop, the whole pipeline per retry (the behaviour
              before this key existed).
            - ``stats_cache`` (bool): cache the per-image class statistics
              next to the data (see :mod:`mmplugins.datasets.class_stats`).
              Default True.
            - ``nproc`` (int, optional): processes computing them.
        seed (int, optional): Seed of the target draw and of RCS. Defaults to
            ``torch.initial_seed()`` at construction, i.e. the seed mmengine's
            Runner set from ``randomness=dict(seed=...)``.

    Note:
        The target index of item ``i`` comes from a generator seeded with
        ``(seed, rank, dataloader worker id, i, draw counter)``: a run with
        the same seed and number of workers pairs the same samples, and an
        index visited again (next epoch) gets a new target. ``len`` is
        ``len(source)`` (DAFormer used ``len(source) * len(target)``), so an
        "epoch" is one pass over the source.

    Raises:
        ValueError: source and target class lists (or ignore_index) differ;
            the source or target dataset is empty; bad
            ``rare_class_sampling`` keys or values; RCS without labels.
    """

    def __init__(self,
                 source: Union[dict, object],
                 target: Union[dict, object],
                 rare_class_sampling: Optional[dict] = None,
                 sync_crop_size: Optional[Sequence[int]] = None,
                 seed: Optional[int] = None):
        self.sync_crop_size = None if sync_crop_size is None else \
            check_sync_crop_size(sync_crop_size)
        #: the last synchronized crop box (y1, y2, x1, x2), for inspection
        self.last_sync_box = None
        self.source = self._build(source, 'source')
        self.target = self._build(target, 'target')

        src_classes = self.source.metainfo.get('classes')
        tgt_classes = self.target.metainfo.get('classes')
        if src_classes is None or tgt_classes is None or \
                list(src_classes) != list(tgt_classes):
            raise ValueError(
                'UDADataset: source and target class lists differ: source '
                f'{_dataset_location(self.source)} has classes '
                f'{None if src_classes is None else list(src_classes)}, '
                f'target {_dataset_location(self.target)} has classes '
                f'{None if tgt_classes is None else list(tgt_classes)}')
        src_ignore = getattr(self.source, 'ignore_index', 255)
        tgt_ignore = getattr(self.target, 'ignore_index', 255)
        if src_ignore != tgt_ignore:
            raise ValueError(
                f'UDADataset: source ignore_index={src_ignore} but target '
                f'ignore_index={tgt_ignore}; they must be equal')
        for name, ds in (('source', self.source), ('target', self.target)):
            if len(ds) == 0:
                raise ValueError(
                    f'UDADataset: the {name} dataset '
                    f'({type(ds).__name__} at {_dataset_location(ds)}) has no '
                    'items; check its data_root / data_prefix / ann_file')

        self.seed = int(torch.initial_seed() if seed is None else seed)
        if self.seed < 0:
            raise ValueError(f'seed must be >= 0, but got seed: {seed}')
        self._draws = 0
        self._class_stats: Optional[ClassStats] = None
        self.last_rcs: Optional[dict] = None

        self.rcs_cfg = None if rare_class_sampling is None else \
            dict(rare_class_sampling)
        self.rcs: Optional[RareClassSampler] = None
        #: the source pipeline split at its crop (None: whole-pipeline
        #: retries)
        self.rcs_split: Optional[CropSplitPipeline] = None
        if self.rcs_cfg is not None:
            unknown = set(self.rcs_cfg) - set(_RCS_KEYS)
            if unknown:
                raise ValueError(
                    f'rare_class_sampling: unknown keys {sorted(unknown)}; '
                    f'expected a subset of {list(_RCS_KEYS)}')
            stats = self.get_class_stats(
                cache=self.rcs_cfg.get('stats_cache', True),
                nproc=self.rcs_cfg.get('nproc'))
            retry = self.rcs_cfg.get('retry', 'crop')
            if retry not in _RCS_RETRY:
                raise ValueError(
                    f'rare_class_sampling.retry must be one of {_RCS_RETRY}, '
                    f'but got retry={retry!r}')
            self.rcs = RareClassSampler(
                stats.counts,
                class_temp=self.rcs_cfg.get('class_temp', 0.01),
                min_pixels=self.rcs_cfg.get('min_pixels', 3000),
                min_crop_ratio=self.rcs_cfg.get('min_crop_ratio', 0.5),
                max_retries=self.rcs_cfg.get('max_retries', 10),
                class_names=list(src_classes))
            if retry == 'crop':
                self.rcs_split = CropSplitPipeline.from_dataset(self.source)
                if self.rcs_split is None:
                    print_log(
                        'rare class sampling: the source pipeline has no '
                        'single random crop (mmseg RandomCrop) to retry '
                        'alone, a transform before it that is not known to '
                        'be deterministic (crop_split.DETERMINISTIC_PRE_CROP)'
                        ', or the dataset overrides prepare_data: re-crops '
                        're-run the whole pipeline',
                        logger='current', level=logging.WARNING)

    @staticmethod
    def _build(cfg, name):
        if isinstance(cfg, dict):
            from mmengine.registry import DefaultScope
            from mmseg.registry import DATASETS
            if 'type' not in cfg:
                raise KeyError(f"UDADataset: the {name} config has no 'type': "
                               f'{cfg}')
            cfg = UDADataset._with_pseudo_margins(cfg, name)
            # outside a Runner there may be no scope; the pipelines' mmseg
            # transforms (LoadAnnotations, PackSegInputs) need 'mmseg'
            scope = None if DefaultScope.get_current_instance() else 'mmseg'
            lazy = cfg.get('lazy_init', False)
            with DefaultScope.overwrite_default_scope(scope):
                dataset = DATASETS.build(dict(cfg, lazy_init=True))
            if not lazy:
                UDADataset._full_init(dataset, name)
            return dataset
        if not hasattr(cfg, '__getitem__') or not hasattr(cfg, '__len__'):
            raise TypeError(f'UDADataset: {name} must be a dataset config '
                            f'dict or a dataset, but got {type(cfg)}')
        return cfg

    @staticmethod
    def _with_pseudo_margins(cfg: dict, name: str) -> dict:
        """Turn the reference's ``target.crop_pseudo_margins`` into the
        ``ValidPseudoMask`` / ``PackValidPseudoMask`` pipeline steps."""
        cfg = dict(cfg)
        margins = cfg.pop(MARGINS_KEY, None)
        if margins is not None and name != 'target':
            raise ValueError(
                f'UDADataset: {MARGINS_KEY} is a key of the target dataset '
                f'(it masks pseudo-labels), but the {name} config has it')
        if margins is not None:
            cfg['pipeline'] = add_valid_pseudo_mask(
                cfg.get('pipeline') or [], margins, where=name)
        check_pipeline(cfg.get('pipeline') or [], where=name)
        return cfg

    @staticmethod
    def _full_init(dataset, name):
        try:
            dataset.full_init()
        except Exception as e:
            # mmengine fails on an empty data list with a numpy message
            # ("need at least one array to concatenate"): say what is empty
            if hasattr(dataset, 'load_data_list') and \
                    not dataset.load_data_list():
                raise ValueError(
                    f'UDADataset: the {name} dataset ({type(dataset).__name__}'
                    f' at {_dataset_location(dataset)}) has no items; check '
                    'its data_root / data_prefix / ann_file') from e
            raise

    # ------------------------------------------------------------------ API
    @property
    def metainfo(self) -> dict:
        """The source dataset's metainfo (classes, palette, ...)."""
        return copy.deepcopy(self.source.metainfo)

    def full_init(self) -> None:
        """Initialise both sub-datasets (mmengine calls this)."""
        for name, ds in (('source', self.source), ('target', self.target)):
            if hasattr(ds, 'full_init'):
                self._full_init(ds, name)

    def __len__(self) -> int:
        return len(self.source)

    def get_class_stats(self,
                        cache: bool = True,
                        nproc: Optional[int] = None) -> ClassStats:
        """Per-image class pixel counts of the source (cached).

        Returns:
            ClassStats: ``counts`` ``[len(source), C]``; see
            :func:`mmplugins.datasets.class_stats.compute_class_stats`.
        """
        if self._class_stats is None:
            self._class_stats = compute_class_stats(
                self.source, nproc=nproc, cache=cache)
        return self._class_stats

    def get_cat_ids(self, idx: int) -> list:
        """Class ids present in source image ``idx`` (mmdet-like access)."""
        counts = self.get_class_stats().counts[idx]
        return np.flatnonzero(counts > 0).tolist()

    def _rng(self, idx: int) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id + 1
        self._draws += 1
        return np.random.default_rng(
            [self.seed, get_rank(), worker, int(idx), self._draws])

    def __getitem__(self, idx: int) -> dict:
        if not -len(self) <= idx < len(self):
            raise IndexError(f'UDADataset index {idx} out of range for '
                             f'{len(self)} source items')
        idx = int(idx) % len(self)
        rng = self._rng(idx)
        if self.rcs is not None and self.rcs_split is not None:
            sample, self.last_rcs = self.rcs.draw_cropped(
                *self.rcs_split.stages(), rng, fetch=self.source.__getitem__)
        elif self.rcs is not None:
            sample, self.last_rcs = self.rcs.draw(self.source.__getitem__,
                                                  rng)
        else:
            sample = self.source[idx]
        sample = dict(sample)
        target = self.target[int(rng.integers(len(self.target)))]
        for key, value in target.items():
            sample['target_' + key] = value
        if self.sync_crop_size is not None:
            sample, self.last_sync_box = synchronized_crop(
                sample, self.sync_crop_size, rng)
        return sample

    def __repr__(self) -> str:
        rcs = 'off' if self.rcs is None else (
            f'T={self.rcs.class_temp}, min_pixels={self.rcs.min_pixels}, '
            f'min_crop_ratio={self.rcs.min_crop_ratio}')
        return (f'{type(self).__name__}(source={len(self.source)} items at '
                f'{_dataset_location(self.source)}, target='
                f'{len(self.target)} items at '
                f'{_dataset_location(self.target)}, rare_class_sampling='
                f'{rcs})')
