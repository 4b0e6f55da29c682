"""Per-image category information for subset samplers, from any toolbox.

The diet sampler decides per image from *which categories it contains* and
logs *how much of each category* the subset keeps. Toolboxes expose that
differently, so this module turns each into one array representation,
:class:`CategoryInfo` (a CSR table: for image ``i`` the entries
``offsets[i]:offsets[i + 1]`` of ``cat_ids`` / ``weights``).

Protocol, first match wins (see :func:`category_info_from_dataset`):

1. ``dataset.get_class_stats()`` or ``dataset.class_pixel_counts``:
   per-image class counts, an array-like of shape ``(N, num_classes)``, an
   object holding it as ``.counts`` (``mmplugins.datasets.class_stats.
   ClassStats``) or a list of ``N`` dicts ``{class index or name: count}``.
   Meant for segmentation datasets that cache their pixel counts; unit
   ``pixels``.
2. ``dataset.get_cat_ids(idx)`` (mmdet, mmpretrain, mmengine wrappers):
   one category index per instance; unit ``instances``. mmengine's
   ``BaseDataset.get_cat_ids`` raises ``NotImplementedError`` (mmseg
   datasets inherit it), which counts as "not provided".
3. Items with ``seg_map_path`` (plain mmseg datasets): the label maps are
   read **once** (through :mod:`mmplugins.datasets.class_stats`, which
   caches the table next to the data), with mmseg's ``reduce_zero_label`` /
   ``label_map`` semantics and ``ignore_index`` skipped; unit ``pixels``.
   This is logged, because the first time costs one pass over the labels.
4. Items with ``gt_label`` (classification annotation lists); unit
   ``images``.

Category names always come from ``dataset.metainfo['classes']``.
"""
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['CategoryInfo', 'category_info_from_dataset']


@dataclass
class CategoryInfo:
    """Category occurrences of every image of a dataset, as flat arrays.

    Args:
        classes (tuple[str]): Category names; a category id is an index here.
        offsets (np.ndarray): ``(N + 1, )`` int64, CSR row pointers.
        cat_ids (np.ndarray): ``(M, )`` int64 category id of each entry
            (one entry per instance, or per (image, class) for counts).
        weights (np.ndarray, optional): ``(M, )`` count carried by each entry
            (pixels); ``None`` means 1 per entry (instances / images).
        unit (str): What a count is: ``'instances'``, ``'pixels'`` or
            ``'images'``. Only used for logging.
        source (str): Which protocol produced the table (for logging).
    """
    classes: Tuple[str, ...]
    offsets: np.ndarray
    cat_ids: np.ndarray
    weights: Optional[np.ndarray] = None
    unit: str = 'instances'
    source: str = ''
    _image_of: Optional[np.ndarray] = field(default=None, repr=False)

    def __post_init__(self):
        self.classes = tuple(self.classes)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.cat_ids = np.asarray(self.cat_ids, dtype=np.int64)
        if self.offsets.ndim != 1 or len(self.offsets) < 1:
            raise ValueError('CategoryInfo: offsets must be a 1-d array of '
                             f'length N + 1, got shape {self.offsets.shape}')
        if self.offsets[-1] != len(self.cat_ids):
            raise ValueError(f'CategoryInfo: offsets[-1]={self.offsets[-1]} '
                             f'but there are {len(self.cat_ids)} entries')
        if self.weights is not None:
            self.weights = np.asarray(self.weights)
            if self.weights.shape != self.cat_ids.shape:
                raise ValueError('CategoryInfo: weights must match cat_ids, '
                                 f'got {self.weights.shape} vs '
                                 f'{self.cat_ids.shape}')
        if len(self.cat_ids):
            lo, hi = int(self.cat_ids.min()), int(self.cat_ids.max())
            if lo < 0 or hi >= len(self.classes):
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f'CategoryInfo ({self.source or "dataset"}): category id '
                    f'{bad} is outside the {len(self.classes)} classes '
                    f'{self.classes}')

    @property
    def num_images(self) -> int:
        return len(self.offsets) - 1

    @property
    def image_of(self) -> np.ndarray:
        """``(M, )`` image index of each entry."""
        if self._image_of is None:
            self._image_of = np.repeat(
                np.arange(self.num_images, dtype=np.int64),
                np.diff(self.offsets))
        return self._image_of

    def presence(self, cat_id: int) -> np.ndarray:
        """``(N, )`` bool: which images contain category ``cat_id``."""
        has = np.zeros(self.num_images, dtype=bool)
        has[self.image_of[self.cat_ids == cat_id]] = True
        return has

    def histogram(self, image_mask: Optional[np.ndarray] = None) -> np.ndarray:
        """Per-class total count, over all images or those in the mask."""
        cat_ids, weights = self.cat_ids, self.weights
        if image_mask is not None:
            entry_mask = np.asarray(image_mask, dtype=bool)[self.image_of]
            cat_ids = cat_ids[entry_mask]
            weights = None if weights is None else weights[entry_mask]
        hist = np.bincount(cat_ids, weights=weights,
                           minlength=len(self.classes))
        return hist.astype(np.int64)

    @classmethod
    def from_lists(cls, per_image: Sequence[Sequence[int]],
                   classes: Sequence[str], unit: str = 'instances',
                   source: str = '') -> 'CategoryInfo':
        """Build from one list of category ids per image (repeats count)."""
        lengths = np.fromiter((len(x) for x in per_image), dtype=np.int64,
                              count=len(per_image))
        offsets = np.zeros(len(per_image) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((int(c) for ids in per_image for c in ids),
                           dtype=np.int64, count=int(offsets[-1]))
        return cls(classes, offsets, flat, None, unit, source)

    @classmethod
    def from_counts(cls, counts, classes: Sequence[str],
                    unit: str = 'pixels', source: str = '') -> 'CategoryInfo':
        """Build from an ``(N, num_classes)`` matrix of per-image counts."""
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[1] != len(classes):
            raise ValueError(
                f'{source or "class statistics"}: expected per-image counts '
                f'of shape (N, {len(classes)}) for classes {tuple(classes)}, '
                f'got shape {counts.shape}')
        if (counts < 0).any():
            raise ValueError(f'{source or "class statistics"}: counts must '
                             'be >= 0')
        rows, cols = np.nonzero(counts)
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=counts.shape[0]),
                  out=offsets[1:])
        return cls(classes, offsets, cols, counts[rows, cols], unit, source)


def _dataset_classes(dataset) -> Tuple[str, ...]:
    metainfo = getattr(dataset, 'metainfo', None)
    classes = None if metainfo is None else metainfo.get('classes', None)
    if not classes:
        raise ValueError(
            f'{type(dataset).__name__} has no metainfo["classes"]; the '
            'sampler needs category names to resolve its rules. Set '
            'metainfo=dict(classes=(...)) in the dataset config.')
    return tuple(classes)


def _counts_from_stats(stats, classes, name) -> np.ndarray:
    """Accept an (N, C) array, an object with such ``.counts`` (mmplugins'
    ``ClassStats``) or a list of {index or name: count} dicts."""
    if hasattr(stats, 'counts'):
        stats = stats.counts
    if len(stats) and isinstance(stats[0], dict):
        index = {c: i for i, c in enumerate(classes)}
        counts = np.zeros((len(stats), len(classes)), dtype=np.int64)
        for i, row in enumerate(stats):
            for key, value in row.items():
                j = index.get(key, key)
                if not isinstance(j, (int, np.integer)) or not (
                        0 <= j < len(classes)):
                    raise ValueError(f'{name}: image {i} has category '
                                     f'{key!r}, not one of {classes}')
                counts[i, j] = value
        return counts
    return np.asarray(stats)


def _has_working_get_cat_ids(dataset) -> bool:
    fn = getattr(dataset, 'get_cat_ids', None)
    if fn is None or len(dataset) == 0:
        return False
    try:
        fn(0)
    except NotImplementedError:  # mmengine BaseDataset default (mmseg)
        return False
    return True


def _read_seg_counts(dataset, classes, logger) -> np.ndarray:
    num = len(dataset)
    logger(f'{type(dataset).__name__} provides no per-image class '
           f'statistics; reading its {num} label maps once to find the '
           'classes of each image (give the dataset a get_class_stats() '
           'method returning (N, num_classes) pixel counts to skip this).')
    try:  # parallel and cached next to the data, when available
        from mmplugins.datasets.class_stats import image_class_pixel_counts
    except ImportError:
        image_class_pixel_counts = None
    if image_class_pixel_counts is not None:
        return np.asarray(image_class_pixel_counts(dataset))
    import mmcv
    from mmengine import fileio
    ignore_index = getattr(dataset, 'ignore_index', 255)
    backend_args = getattr(dataset, 'backend_args', None)
    counts = np.zeros((num, len(classes)), dtype=np.int64)
    for i in range(num):
        info = dataset.get_data_info(i)
        seg = mmcv.imfrombytes(
            fileio.get(info['seg_map_path'], backend_args=backend_args),
            flag='unchanged', backend='pillow').squeeze().astype(np.uint8)
        # same label transforms as mmseg's LoadAnnotations
        if info.get('reduce_zero_label', False):
            seg[seg == 0] = 255
            seg = seg - 1
            seg[seg == 254] = 255
        label_map = info.get('label_map', None)
        if label_map:
            src = seg.copy()
            for old_id, new_id in label_map.items():
                seg[src == old_id] = new_id
        values = seg[seg != ignore_index].ravel()
        values = values[values < len(classes)]
        counts[i] = np.bincount(values, minlength=len(classes))
    return counts


def category_info_from_dataset(dataset, logger=None) -> CategoryInfo:
    """Extract :class:`CategoryInfo` from a dataset (protocol in the module
    docstring).

    Args:
        dataset: An mmdet / mmseg / mmpretrain / mmengine dataset.
        logger (callable, optional): ``logger(msg)`` for progress messages.

    Raises:
        ValueError: The dataset has no class names or no category
            information by any of the supported protocols.
    """
    logger = logger or (lambda msg: None)
    classes = _dataset_classes(dataset)
    name = type(dataset).__name__
    t0 = time.perf_counter()

    stats = None
    if callable(getattr(dataset, 'get_class_stats', None)):
        stats, src = dataset.get_class_stats(), f'{name}.get_class_stats()'
    elif getattr(dataset, 'class_pixel_counts', None) is not None:
        stats, src = dataset.class_pixel_counts, f'{name}.class_pixel_counts'
    if stats is not None:
        counts = _counts_from_stats(stats, classes, src)
        if len(counts) != len(dataset):
            raise ValueError(f'{src} has {len(counts)} rows but the dataset '
                             f'has {len(dataset)} items')
        info = CategoryInfo.from_counts(counts, classes, 'pixels', src)
    elif _has_working_get_cat_ids(dataset):
        per_image = [dataset.get_cat_ids(i) for i in range(len(dataset))]
        info = CategoryInfo.from_lists(per_image, classes, 'instances',
                                       f'{name}.get_cat_ids')
    else:
        first = dataset.get_data_info(0) if len(dataset) and hasattr(
            dataset, 'get_data_info') else {}
        if 'seg_map_path' in first:
            counts = _read_seg_counts(dataset, classes, logger)
            info = CategoryInfo.from_counts(counts, classes, 'pixels',
                                            f'{name} label maps')
        elif 'gt_label' in first:
            per_image = [
                np.atleast_1d(dataset.get_data_info(i)['gt_label']).tolist()
                for i in range(len(dataset))
            ]
            info = CategoryInfo.from_lists(per_image, classes, 'images',
                                           f'{name} gt_label')
        else:
            raise ValueError(
                f'{name} has no category information: expected one of '
                'get_class_stats() / class_pixel_counts (per-image class '
                'counts), a working get_cat_ids(idx) (mmdet, mmpretrain), '
                'items with "seg_map_path" (mmseg) or with "gt_label" '
                '(classification).')
    logger(f'category info from {info.source}: {info.num_images} images, '
           f'{len(info.cat_ids)} entries in {time.perf_counter() - t0:.2f}s')
    return info


def format_histogram(classes: Sequence[str],
                     columns: List[Tuple[str, Sequence]], unit: str) -> str:
    """A fixed-width text table: one row per class, one column per series."""
    width = max([len(unit) + 6] + [len(c) for c in classes]) + 2
    header = f'{"class (" + unit + ")":<{width}}' + ''.join(
        f'{title:>12}' for title, _ in columns)
    lines = [header, '-' * len(header)]
    for i, cls in enumerate(classes):
        lines.append(f'{cls:<{width}}' + ''.join(
            f'{int(values[i]):>12d}' for _, values in columns))
    lines.append(f'{"total":<{width}}' + ''.join(
        f'{int(np.sum(values)):>12d}' for _, values in columns))
    return '\n'.join(lines)
