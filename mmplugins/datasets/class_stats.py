"""Per-image class pixel statistics of a segmentation dataset, cached.

Rare class sampling (:mod:`mmplugins.datasets.rare_class_sampling`) and
class-aware samplers need, for every labelled image, how many pixels of each
class it holds. Reading every label map is the slow part, so the table is
computed once, in parallel, and cached *next to the data* under a fingerprint
of the label files::

    <data_root>/.mmplugins_cache/class_stats_<key>.npz

``<key>`` identifies *which* statistics these are (the sorted label paths,
``num_classes``, ``ignore_index``, ``reduce_zero_label``, ``label_map``); the
file stores a *fingerprint* of the label files' sizes and modification times.
A cache whose fingerprint no longer matches the files (data changed) is
reported and recomputed, an empty or corrupt file likewise; a cache is never
used for data it was not computed from.

Pixel values go through the same mapping as mmseg's ``LoadAnnotations``
(``reduce_zero_label`` first, then ``label_map``), so the counts are what the
model is trained on. A value that is neither a class id nor ``ignore_index``
is an error naming the file: it would crash the loss later anyway.

Example::

    >>> from mmplugins.datasets.class_stats import image_class_pixel_counts
    >>> counts = image_class_pixel_counts(dataset)        # [N, C] int64
    >>> counts = image_class_pixel_counts(
    ...     ['a.png', 'b.png'], num_classes=12, nproc=2)
"""
import hashlib
import json
import multiprocessing
import os
import os.path as osp
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

#: Bump when the cached content or its meaning changes.
CACHE_VERSION = 1
#: Folder created next to the data.
CACHE_DIRNAME = '.mmplugins_cache'
#: Environment variable overriding the fallback cache folder.
CACHE_ENV = 'MMPLUGINS_CACHE_DIR'

# below this many maps a process pool costs more than it saves
_MIN_PARALLEL = 32
# float32 histograms (cv2.calcHist) are exact below 2**24 per bin
_CALCHIST_MAX_PIXELS = 2**24


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def read_label(path: str) -> np.ndarray:
    """Read a label map as a 2-D ``uint8`` array, like mmseg does.

    mmseg's ``LoadAnnotations`` decodes with ``flag='unchanged'`` and casts to
    ``uint8``. cv2 is used for speed; a palette ("P" mode) PNG, which cv2
    expands to colours, is re-read with Pillow to get its indices, as
    mmseg's default Pillow backend does.

    Raises:
        FileNotFoundError: ``path`` does not exist or cannot be decoded.
        ValueError: the map is a colour image or holds values > 255.
    """
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'label map not found: {path}')
        raise FileNotFoundError(f'label map cannot be decoded: {path}')
    if label.ndim == 3:
        from PIL import Image
        with Image.open(path) as img:
            label = np.asarray(img)
        if label.ndim != 2:
            raise ValueError(
                f'label map {path} has shape {label.shape}; expected a '
                'single-channel (or palette) image of class ids')
    if label.dtype != np.uint8:
        if label.size and int(label.max()) > 255:
            raise ValueError(
                f'label map {path} holds values up to {int(label.max())} '
                f'(dtype {label.dtype}); mmseg casts labels to uint8, '
                'so values > 255 would wrap around')
        label = label.astype(np.uint8)
    return label


def label_value_histogram(label: np.ndarray) -> np.ndarray:
    """Number of pixels of each value 0..255 of a ``uint8`` map (int64)."""
    if label.size < _CALCHIST_MAX_PIXELS:
        # ~4x faster than np.bincount on a 512x1024 map
        hist = cv2.calcHist([np.ascontiguousarray(label)], [0], None, [256],
                            [0, 256])
        return hist.ravel().astype(np.int64)
    return np.bincount(label.ravel(), minlength=256).astype(np.int64)


def value_to_class_lut(num_classes: int,
                       ignore_index: int = 255,
                       reduce_zero_label: bool = False,
                       label_map: Optional[Dict[int, int]] = None
                       ) -> np.ndarray:
    """Map each raw pixel value 0..255 to a train id, as mmseg does.

    Returns:
        np.ndarray: int64 ``[256]``: a class id in ``[0, num_classes)``,
        ``num_classes`` for ``ignore_index``, ``-1`` for a value that is
        neither (invalid).
    """
    values = np.arange(256, dtype=np.int64)
    if reduce_zero_label:
        # LoadAnnotations: 0 -> 255, then -1, then 254 (was 255) -> 255
        values = np.where(values == 0, 255, values)
        values = values - 1
        values = np.where(values == 254, 255, values)
    if label_map:
        mapped = values.copy()
        for old, new in label_map.items():
            mapped[values == old] = new
        values = mapped
    lut = np.full(256, -1, dtype=np.int64)
    lut[(values >= 0) & (values < num_classes)] = values[
        (values >= 0) & (values < num_classes)]
    lut[values == ignore_index] = num_classes
    return lut


def label_class_pixel_counts(path: str,
                             num_classes: int,
                             ignore_index: int = 255,
                             reduce_zero_label: bool = False,
                             label_map: Optional[Dict[int, int]] = None,
                             _lut: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixels of each class in one label map.

    Args:
        path (str): Label map (PNG of class ids).
        num_classes (int): Number of classes C.
        ignore_index (int): Value not counted. Defaults to 255.
        reduce_zero_label (bool): mmseg's ``reduce_zero_label``.
        label_map (dict, optional): mmseg's ``label_map`` (old -> new id).

    Returns:
        np.ndarray: int64 ``[C]``.

    Raises:
        ValueError: the map holds a value that is neither a class id nor
            ``ignore_index`` (after the mapping); the message names the file.
    """
    lut = _lut if _lut is not None else value_to_class_lut(
        num_classes, ignore_index, reduce_zero_label, label_map)
    hist = label_value_histogram(read_label(path))
    present = hist > 0
    bad = present & (lut < 0)
    if bad.any():
        raise ValueError(
            f'label map {path} holds values {np.flatnonzero(bad).tolist()} '
            f'that are neither a class id in [0, {num_classes}) nor '
            f'ignore_index={ignore_index}'
            + (' (after reduce_zero_label)' if reduce_zero_label else ''))
    counts = np.bincount(lut[present], weights=hist[present],
                         minlength=num_classes + 1)
    return counts[:num_classes].astype(np.int64)


def _stats_key(paths: Sequence[str], num_classes: int, ignore_index: int,
               reduce_zero_label: bool,
               label_map: Optional[Dict[int, int]]) -> str:
    """Which statistics these are: names the cache file."""
    payload = json.dumps([
        CACHE_VERSION, num_classes, ignore_index, bool(reduce_zero_label),
        sorted((int(k), int(v)) for k, v in (label_map or {}).items()),
        sorted(paths)
    ])
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def class_stats_fingerprint(paths: Sequence[str], num_classes: int,
                            ignore_index: int = 255,
                            reduce_zero_label: bool = False,
                            label_map: Optional[Dict[int, int]] = None,
                            content_hash: bool = False) -> str:
    """Hash of the label files and settings.

    Per file: path, size, ``st_mtime_ns`` (nanoseconds, not seconds: a
    same-size label rewritten within the same second still changes it) and
    the inode (a file replaced by a rename, as most tools save, changes it
    even with an equal mtime). ``content_hash=True`` hashes the bytes of
    every label instead of its times (reads them all; for filesystems whose
    timestamps are coarse or not kept, e.g. some network or archive mounts).

    Changes whenever a label file is added, removed, rewritten or touched,
    or ``num_classes`` / ``ignore_index`` / the mapping change.

    Raises:
        FileNotFoundError: a label file does not exist (names it).
    """
    h = hashlib.sha1(
        _stats_key(paths, num_classes, ignore_index, reduce_zero_label,
                   label_map).encode())
    h.update(b'content\n' if content_hash else b'stat\n')
    for path in sorted(set(paths)):
        try:
            st = os.stat(path)
            if content_hash:
                with open(path, 'rb') as f:
                    digest = hashlib.sha1(f.read()).hexdigest()
                h.update(f'{path}\0{st.st_size}\0{digest}\n'.encode())
                continue
        except FileNotFoundError:
            raise FileNotFoundError(f'label map not found: {path}') from None
        h.update(f'{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n'
                 .encode())
    return h.hexdigest()


# --------------------------------------------------------------------------
# parallel computation
# --------------------------------------------------------------------------
_WORKER_LUT: Optional[np.ndarray] = None
_WORKER_ARGS: Tuple = ()


def _init_worker(lut: np.ndarray, args: Tuple) -> None:
    global _WORKER_LUT, _WORKER_ARGS
    # NB: no cv2.setNumThreads() here: in a forked child it tears down the
    # parent's OpenCV thread pool and deadlocks (pthread_cond_destroy on a
    # condition the parent's threads were waiting on)
    _WORKER_LUT, _WORKER_ARGS = lut, args


def _worker_counts(path: str) -> np.ndarray:
    num_classes, ignore_index, reduce_zero_label = _WORKER_ARGS
    return label_class_pixel_counts(
        path, num_classes, ignore_index, reduce_zero_label, _lut=_WORKER_LUT)


def default_nproc() -> int:
    """CPU cores this process may use (affinity-aware), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def compute_class_pixel_counts(paths: Sequence[str],
                               num_classes: int,
                               ignore_index: int = 255,
                               reduce_zero_label: bool = False,
                               label_map: Optional[Dict[int, int]] = None,
                               nproc: Optional[int] = None) -> np.ndarray:
    """Class pixel counts of every label map, without any cache.

    Uses a ``multiprocessing`` pool of ``nproc`` processes (default: the
    usable cores, at most 8); fewer than 32 maps or ``nproc=1`` run serially.

    Returns:
        np.ndarray: int64 ``[len(paths), num_classes]``, in ``paths`` order.
    """
    nproc = default_nproc() if nproc is None else int(nproc)
    if nproc < 1:
        raise ValueError(f'nproc must be >= 1, but got nproc: {nproc}')
    lut = value_to_class_lut(num_classes, ignore_index, reduce_zero_label,
                             label_map)
    out = np.zeros((len(paths), num_classes), dtype=np.int64)
    # a daemonic process (e.g. a dataloader worker) may not fork a pool
    if (nproc == 1 or len(paths) < _MIN_PARALLEL
            or multiprocessing.current_process().daemon):
        for i, path in enumerate(paths):
            out[i] = label_class_pixel_counts(
                path, num_classes, ignore_index, reduce_zero_label, _lut=lut)
        return out
    chunksize = max(1, min(64, len(paths) // (nproc * 4)))
    args = (num_classes, ignore_index, reduce_zero_label)
    with multiprocessing.Pool(nproc, _init_worker, (lut, args)) as pool:
        for i, counts in enumerate(
                pool.imap(_worker_counts, paths, chunksize=chunksize)):
            out[i] = counts
    return out


# --------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------
@dataclass
class ClassStats:
    """Per-image class pixel counts and where they came from.

    Attributes:
        counts (np.ndarray): int64 ``[N, C]``, row i = ``paths[i]``.
        paths (list[str]): Label map of each row.
        num_classes (int): C.
        ignore_index (int): The value not counted.
        status (str): ``'computed'`` (no cache yet), ``'loaded'`` (valid
            cache), ``'stale'`` (cache fingerprint mismatched: recomputed),
            ``'corrupt'`` (unreadable cache: recomputed) or ``'uncached'``
            (``cache=False``).
        cache_file (str, optional): The cache read or written, if any.
    """
    counts: np.ndarray
    paths: List[str]
    num_classes: int
    ignore_index: int = 255
    status: str = 'uncached'
    cache_file: Optional[str] = None
    class_names: Optional[List[str]] = field(default=None, repr=False)

    @property
    def total_pixels(self) -> np.ndarray:
        """int64 ``[C]``: pixels of each class over all images."""
        return self.counts.sum(axis=0)

    def pixel_count_dict(self) -> Dict[int, int]:
        """``{class id: total pixels}``, the input of ``rcs_class_probs``."""
        return {c: int(n) for c, n in enumerate(self.total_pixels)}

    def images_with_class(self, min_pixels: int = 1) -> Dict[int, np.ndarray]:
        """``{class id: indices of images with >= min_pixels of it}``."""
        return {
            c: np.flatnonzero(self.counts[:, c] >= min_pixels)
            for c in range(self.num_classes)
        }


def fallback_cache_dir() -> str:
    """Cache folder used when the data folder is not writable.

    ``$MMPLUGINS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/mmplugins`` or
    ``~/.cache/mmplugins``, each with a ``class_stats`` subfolder.
    """
    root = os.environ.get(CACHE_ENV)
    if not root:
        root = osp.join(
            os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')),
            'mmplugins')
    return osp.join(root, 'class_stats')


def _data_cache_dir(paths: Sequence[str], data_root: Optional[str]) -> str:
    if data_root:
        root = data_root
    else:
        dirs = sorted({osp.dirname(osp.abspath(p)) for p in paths})
        root = osp.commonpath(dirs) if dirs else os.getcwd()
        # labels usually sit in <data_root>/<split>_gt/: cache beside it
        if len(dirs) == 1:
            root = osp.dirname(root)
    return osp.join(root, CACHE_DIRNAME)


def _load_cache(cache_file: str, fingerprint: str, paths: Sequence[str],
                num_classes: int) -> Tuple[Optional[np.ndarray], str]:
    """``(counts or None, why)``, why: loaded/missing/stale/corrupt."""
    if not osp.exists(cache_file):
        return None, 'missing'
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            meta = json.loads(str(data['meta']))
            counts = np.asarray(data['counts'], dtype=np.int64)
            cached_paths = [str(p) for p in data['paths']]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            json.JSONDecodeError) as e:
        print_log(
            f'class statistics cache {cache_file} is unreadable '
            f'({type(e).__name__}: {e}); recomputing.',
            logger='current', level=30)
        return None, 'corrupt'
    if (meta.get('version') != CACHE_VERSION
            or counts.shape != (len(cached_paths), num_classes)):
        print_log(f'class statistics cache {cache_file} is malformed; '
                  'recomputing.', logger='current', level=30)
        return None, 'corrupt'
    if meta.get('fingerprint') != fingerprint:
        print_log(
            f'class statistics cache {cache_file} is stale: the label files '
            'changed since it was written (fingerprint mismatch); '
            'recomputing.', logger='current', level=30)
        return None, 'stale'
    row = {p: i for i, p in enumerate(cached_paths)}
    missing = [p for p in paths if p not in row]
    if missing:  # same key implies same paths; guard against hash collision
        return None, 'stale'
    return counts[[row[p] for p in paths]], 'loaded'


def _write_cache(cache_file: str, fingerprint: str, paths: Sequence[str],
                 counts: np.ndarray) -> None:
    os.makedirs(osp.dirname(cache_file), exist_ok=True)
    meta = json.dumps(dict(version=CACHE_VERSION, fingerprint=fingerprint))
    # write-then-rename: concurrent ranks never see a half-written file
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(cache_file), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            np.savez(f, counts=counts, paths=np.asarray(paths, dtype=str),
                     meta=np.asarray(meta))
        os.replace(tmp, cache_file)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _dataset_label_info(dataset) -> dict:
    """Label paths and mapping settings of an mmseg dataset."""
    if not getattr(dataset, '_fully_initialized', True):
        dataset.full_init()
    paths = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        seg = info.get('seg_map_path')
        if not seg:
            raise ValueError(
                f'{type(dataset).__name__} item {i} '
                f'({info.get("img_path")}) has no seg_map_path: class '
                'statistics need a label map for every image')
        paths.append(seg)
    classes = dataset.metainfo.get('classes')
    if not classes:
        raise ValueError(f'{type(dataset).__name__} has no metainfo '
                         "'classes'; cannot tell num_classes")
    return dict(
        paths=paths,
        num_classes=len(classes),
        ignore_index=getattr(dataset, 'ignore_index', 255),
        reduce_zero_label=bool(getattr(dataset, 'reduce_zero_label', False)),
        label_map=getattr(dataset, 'label_map', None),
        data_root=getattr(dataset, 'data_root', None),
        class_names=list(classes))


def compute_class_stats(dataset_or_label_paths,
                        num_classes: Optional[int] = None,
                        ignore_index: int = 255,
                        nproc: Optional[int] = None,
                        cache: bool = True,
                        cache_dir: Optional[str] = None,
                        reduce_zero_label: bool = False,
                        label_map: Optional[Dict[int, int]] = None,
                        data_root: Optional[str] = None,
                        content_hash: bool = False) -> ClassStats:
    """Per-image class pixel counts, from the cache when it is valid.

    Args:
        dataset_or_label_paths: An mmseg dataset (``BaseSegDataset``; its
            ``seg_map_path`` s, ``metainfo['classes']``, ``ignore_index``,
            ``reduce_zero_label``, ``label_map`` and ``data_root`` are used
            and override the arguments below) or a sequence of label paths.
        num_classes (int, optional): C. Required with a list of paths.
        ignore_index (int): Value not counted. Defaults to 255.
        nproc (int, optional): Processes for the computation. Defaults to
            the usable cores (at most 8).
        cache (bool): Read/write the cache. Defaults to True.
        cache_dir (str, optional): Cache folder. Defaults to
            ``<data_root>/.mmplugins_cache`` (``data_root`` = the dataset's,
            else the parent of the label folder); if that is not writable,
            :func:`fallback_cache_dir` (logged).
        reduce_zero_label (bool): mmseg's ``reduce_zero_label`` (paths only).
        label_map (dict, optional): mmseg's ``label_map`` (paths only).
        data_root (str, optional): Where "next to the data" is (paths only).
        content_hash (bool): Validate the cache by the labels' bytes instead
            of size + ``st_mtime_ns`` + inode (see
            :func:`class_stats_fingerprint`). Defaults to False.

    Returns:
        ClassStats: with ``counts`` ``[N, C]`` and how it was obtained.
    """
    class_names = None
    if isinstance(dataset_or_label_paths, (str, bytes)):
        raise TypeError('expected a dataset or a sequence of label paths, '
                        f'but got a single path: {dataset_or_label_paths!r}')
    if hasattr(dataset_or_label_paths, 'get_data_info'):
        info = _dataset_label_info(dataset_or_label_paths)
        paths = info['paths']
        num_classes = info['num_classes']
        ignore_index = info['ignore_index']
        reduce_zero_label = info['reduce_zero_label']
        label_map = info['label_map']
        data_root = info['data_root'] or data_root
        class_names = info['class_names']
    else:
        paths = [str(p) for p in dataset_or_label_paths]
        if num_classes is None:
            raise ValueError('num_classes is required with a list of label '
                             'paths')
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f'num_classes must be a positive int, but got {num_classes!r}')
    if not paths:
        raise ValueError('no label maps to compute class statistics of '
                         '(empty dataset or path list)')
    paths = [osp.abspath(p) for p in paths]

    def _compute():
        return compute_class_pixel_counts(paths, num_classes, ignore_index,
                                          reduce_zero_label, label_map, nproc)

    if not cache:
        return ClassStats(_compute(), paths, num_classes, ignore_index,
                          'uncached', None, class_names)

    fingerprint = class_stats_fingerprint(paths, num_classes, ignore_index,
                                          reduce_zero_label, label_map,
                                          content_hash)
    name = 'class_stats_' + _stats_key(paths, num_classes, ignore_index,
                                       reduce_zero_label, label_map) + '.npz'
    primary = osp.join(cache_dir or _data_cache_dir(paths, data_root), name)
    fallback = osp.join(fallback_cache_dir(), name)

    status = 'computed'
    for cache_file in dict.fromkeys([primary, fallback]):
        counts, why = _load_cache(cache_file, fingerprint, paths, num_classes)
        if counts is not None:
            print_log(f'class statistics of {len(paths)} label maps loaded '
                      f'from {cache_file}', logger='current')
            return ClassStats(counts, paths, num_classes, ignore_index,
                              'loaded', cache_file, class_names)
        if why in ('stale', 'corrupt') and status == 'computed':
            status = why
    counts = _compute()
    written = None
    for cache_file in dict.fromkeys([primary, fallback]):
        try:
            _write_cache(cache_file, fingerprint, paths, counts)
            written = cache_file
            break
        except OSError as e:
            if cache_file == primary and primary != fallback:
                print_log(
                    f'cannot write the class statistics cache next to the '
                    f'data ({primary}: {e}); using {fallback} instead',
                    logger='current', level=30)
            else:
                print_log(f'cannot write the class statistics cache '
                          f'{cache_file} ({e}); it will be recomputed next '
                          'time', logger='current', level=30)
    if written:
        print_log(f'class statistics of {len(paths)} label maps computed '
                  f'and cached in {written}', logger='current')
    return ClassStats(counts, paths, num_classes, ignore_index, status,
                      written, class_names)


def image_class_pixel_counts(dataset_or_label_paths,
                             num_classes: Optional[int] = None,
                             ignore_index: int = 255,
                             nproc: Optional[int] = None,
                             **kwargs) -> np.ndarray:
    """Per-image class pixel counts ``[N, C]`` (int64), cached.

    The public entry point for samplers (rare class sampling, class-aware
    sampling of mmseg datasets). Arguments as :func:`compute_class_stats`.
    """
    return compute_class_stats(dataset_or_label_paths, num_classes,
                               ignore_index, nproc, **kwargs).counts


__all__ = [
    'ClassStats', 'read_label', 'label_value_histogram',
    'value_to_class_lut', 'label_class_pixel_counts',
    'class_stats_fingerprint', 'compute_class_pixel_counts',
    'compute_class_stats', 'image_class_pixel_counts', 'fallback_cache_dir',
    'default_nproc'
]
