"""Rare class sampling (RCS), DAFormer (Hoyer et al., CVPR 2022), Sec. 3.3.

A source sample is not drawn uniformly but through a class: class ``c`` is
drawn with

    P(c) = exp((1 - f_c) / T) / sum_c' exp((1 - f_c') / T)

where ``f_c`` is the share of ``c`` among all labelled source pixels and
``T`` the temperature (``class_temp``; smaller = more weight on rare
classes). Then an image holding at least ``min_pixels`` pixels of ``c`` is
drawn uniformly, and its random crop is re-drawn up to ``max_retries``
times until the crop holds more than ``min_pixels * min_crop_ratio`` pixels
of ``c`` (:meth:`RareClassSampler.draw_cropped`: only the crop is retried,
see :mod:`mmplugins.datasets.crop_split`; :meth:`RareClassSampler.draw`:
DAFormer's loop, which re-runs the whole pipeline).

Choices (see ``docs/rare_class_sampling.md``):

* A class with zero source pixels gets probability 0 (it cannot be drawn;
  nothing is divided by zero). DAFormer never lists such classes at all.
* A class with pixels but no image holding ``>= min_pixels`` of it is
  dropped from RCS with a logged warning and the others renormalised
  (softmax restricted to the kept classes). DAFormer asserts instead.
* The crop threshold ``min_pixels * min_crop_ratio`` is absolute, as in
  DAFormer (its crops are 512x512 of 1024x2048 Cityscapes-resized GTA
  images); it is *not* rescaled to the crop size, so for small demo images
  lower ``min_pixels`` (200 for the 256x512 demo with 128x256 crops).
* After ``max_retries`` failed re-crops the last crop is used, as DAFormer
  does (it must return something; the class still got its chance).
* DAFormer keeps images with ``> min_pixels``; here ``>= min_pixels`` (the
  issue's wording). The difference is one pixel.

The module holds the reference semantics as pure functions and
:class:`RareClassSampler`, the stateful part used by
:class:`mmplugins.datasets.uda_dataset.UDADataset`.
"""
import math
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log


# --------------------------------------------------------------------------
# pure functions (reference semantics)
# --------------------------------------------------------------------------
def rcs_class_probs(pixel_counts: Mapping[int, float],
                    temperature: float) -> Dict[int, float]:
    """RCS class probabilities ``softmax((1 - f) / T)``.

    Args:
        pixel_counts (Mapping[int, float]): Class id -> total source pixels
            of that class (non-negative).
        temperature (float): ``T > 0``; DAFormer uses 0.01.

    Returns:
        dict[int, float]: Class id -> probability, in ascending class id
        order, summing to 1. Classes with 0 pixels get exactly 0.

    Raises:
        ValueError: ``temperature <= 0``, a negative or non-finite count, an
            empty mapping, or no pixel at all.

    Example:
        >>> p = rcs_class_probs({0: 900, 1: 90, 2: 10, 3: 0}, 0.1)
        >>> {c: round(v, 4) for c, v in p.items()}
        {0: 0.0001, 1: 0.31, 2: 0.6899, 3: 0.0}
    """
    if not (isinstance(temperature, (int, float))
            and math.isfinite(temperature) and temperature > 0):
        raise ValueError('rcs temperature must be a finite number > 0, but '
                         f'got temperature: {temperature!r}')
    if len(pixel_counts) == 0:
        raise ValueError('rcs_class_probs: pixel_counts is empty')
    classes = sorted(pixel_counts)
    counts = np.asarray([pixel_counts[c] for c in classes], dtype=np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError('rcs_class_probs: pixel counts must be finite and '
                         f'>= 0, but got {dict(zip(classes, counts))}')
    total = counts.sum()
    if total <= 0:
        raise ValueError('rcs_class_probs: no class has any pixel; cannot '
                         'compute class frequencies')
    freq = counts / total
    present = counts > 0
    logits = (1.0 - freq[present]) / temperature
    # max-subtraction: with T=0.01 the logits reach 100, exp(100) ~ 1e43
    weights = np.exp(logits - logits.max())
    probs = np.zeros_like(freq)
    probs[present] = weights / weights.sum()
    return {c: float(p) for c, p in zip(classes, probs)}


def rcs_image_lists(counts: np.ndarray,
                    min_pixels: int) -> Dict[int, np.ndarray]:
    """Images eligible for each class: ``counts[i, c] >= min_pixels``.

    Args:
        counts (np.ndarray): ``[N, C]`` per-image class pixel counts.
        min_pixels (int): Minimum pixels of the class in the image.

    Returns:
        dict[int, np.ndarray]: Class id -> sorted image indices (int64).
    """
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f'counts must be [N, C], but got shape '
                         f'{counts.shape}')
    return {
        c: np.flatnonzero(counts[:, c] >= min_pixels)
        for c in range(counts.shape[1])
    }


def gt_sem_seg_of(sample) -> np.ndarray:
    """The ground-truth map of a pipeline output, as a numpy array.

    Accepts a packed sample (``data_samples.gt_sem_seg``, mmseg
    ``PackSegInputs``) or an unpacked results dict (``gt_seg_map``).
    """
    if isinstance(sample, dict):
        data_sample = sample.get('data_samples')
        if data_sample is not None and hasattr(data_sample, 'gt_sem_seg'):
            data = data_sample.gt_sem_seg.data
            return data.numpy() if hasattr(data, 'numpy') else np.asarray(
                data)
        if 'gt_seg_map' in sample:
            return np.asarray(sample['gt_seg_map'])
    raise KeyError(
        'rare class sampling needs the ground truth after the source '
        "pipeline: expected 'data_samples' with gt_sem_seg (PackSegInputs) "
        f"or 'gt_seg_map', but the sample has keys "
        f'{sorted(sample) if isinstance(sample, dict) else type(sample)}')


# --------------------------------------------------------------------------
# sampler state
# --------------------------------------------------------------------------
class RareClassSampler:
    """Draws source indices by rare class sampling and re-crops.

    Args:
        image_class_counts (np.ndarray): ``[N, C]`` pixels of each class in
            each source image (see
            :func:`mmplugins.datasets.class_stats.image_class_pixel_counts`).
        class_temp (float): Temperature ``T`` of the class softmax.
            DAFormer: 0.01.
        min_pixels (int): An image is eligible for class ``c`` if it holds
            ``>= min_pixels`` of it; the crop must hold
            ``> min_pixels * min_crop_ratio``. DAFormer: 3000 (for
            1024x512 images, 512x512 crops).
        min_crop_ratio (float): See ``min_pixels``. 0 disables re-cropping.
            DAFormer: 0.5.
        max_retries (int): Re-runs of the pipeline when the crop misses the
            class. Defaults to 10 (DAFormer).
        class_names (Sequence[str], optional): For log messages.

    Attributes:
        classes (np.ndarray): Class ids that can be drawn.
        probs (np.ndarray): Their probabilities (sum 1).
        class_probs (dict): All class ids -> probability (0 for dropped and
            absent classes).
        images (dict): Class id -> eligible image indices.
    """

    def __init__(self,
                 image_class_counts: np.ndarray,
                 class_temp: float = 0.01,
                 min_pixels: int = 3000,
                 min_crop_ratio: float = 0.5,
                 max_retries: int = 10,
                 class_names: Optional[Sequence[str]] = None):
        if not (isinstance(min_pixels, (int, np.integer)) and min_pixels >= 0
                and not isinstance(min_pixels, bool)):
            raise ValueError('rare_class_sampling.min_pixels must be an int '
                             f'>= 0, but got min_pixels: {min_pixels!r}')
        if not (isinstance(min_crop_ratio, (int, float))
                and math.isfinite(min_crop_ratio) and min_crop_ratio >= 0):
            raise ValueError('rare_class_sampling.min_crop_ratio must be a '
                             'number >= 0, but got min_crop_ratio: '
                             f'{min_crop_ratio!r}')
        if not (isinstance(max_retries, (int, np.integer)) and max_retries >= 0
                and not isinstance(max_retries, bool)):
            raise ValueError('rare_class_sampling.max_retries must be an int '
                             f'>= 0, but got max_retries: {max_retries!r}')
        counts = np.asarray(image_class_counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[0] == 0:
            raise ValueError('image_class_counts must be [N>0, C], but got '
                             f'shape {counts.shape}')
        self.class_temp = float(class_temp)
        self.min_pixels = int(min_pixels)
        self.min_crop_ratio = float(min_crop_ratio)
        self.max_retries = int(max_retries)
        num_classes = counts.shape[1]
        names = list(class_names) if class_names is not None else [
            str(c) for c in range(num_classes)]

        totals = counts.sum(axis=0)
        probs = rcs_class_probs({c: int(n) for c, n in enumerate(totals)},
                                self.class_temp)
        self.images = rcs_image_lists(counts, self.min_pixels)
        absent = [c for c in range(num_classes) if totals[c] == 0]
        if absent:
            print_log(
                'rare class sampling: classes never in the source labels get '
                'probability 0: ' + ', '.join(f'{c} ({names[c]})'
                                              for c in absent),
                logger='current', level=30)
        dropped = [
            c for c in range(num_classes)
            if totals[c] > 0 and len(self.images[c]) == 0
        ]
        if dropped:
            print_log(
                'rare class sampling: no source image holds >= '
                f'min_pixels={self.min_pixels} pixels of classes '
                + ', '.join(f'{c} ({names[c]}, at most '
                            f'{int(counts[:, c].max())} px/image)'
                            for c in dropped)
                + '; they are dropped from RCS (lower min_pixels to keep '
                'them)', logger='current', level=30)
        kept = [c for c in range(num_classes)
                if probs[c] > 0 and len(self.images[c]) > 0]
        if not kept:
            raise ValueError(
                'rare class sampling: no class has a source image with >= '
                f'min_pixels={self.min_pixels} pixels (largest per-image '
                f'count: {int(counts.max())}); lower '
                'rare_class_sampling.min_pixels')
        p = np.asarray([probs[c] for c in kept], dtype=np.float64)
        self.classes = np.asarray(kept, dtype=np.int64)
        self.probs = p / p.sum()
        self.class_probs = {c: 0.0 for c in range(num_classes)}
        self.class_probs.update(
            {int(c): float(q) for c, q in zip(self.classes, self.probs)})
        self.class_names = names
        print_log(
            'rare class sampling (T={}, min_pixels={}): '.format(
                self.class_temp, self.min_pixels) + ', '.join(
                    f'{names[c]}={self.class_probs[c]:.3f}'
                    f'[{len(self.images[c])} img]'
                    for c in range(num_classes)), logger='current')

    @property
    def crop_threshold(self) -> float:
        """A crop must hold more than this many pixels of the class."""
        return self.min_pixels * self.min_crop_ratio

    def sample_class(self, rng: np.random.Generator) -> int:
        """Draw a class id ``c ~ P(c)``."""
        return int(rng.choice(self.classes, p=self.probs))

    def sample_image(self, cls: int, rng: np.random.Generator) -> int:
        """Draw an eligible image index of ``cls`` uniformly."""
        return int(rng.choice(self.images[cls]))

    def draw(self, fetch: Callable[[int], dict],
             rng: np.random.Generator) -> Tuple[dict, dict]:
        """Draw a class, an image of it, and crop until the class is in.

        Args:
            fetch (Callable[[int], dict]): Runs the source pipeline on an
                index (``source_dataset.__getitem__``); its randomness
                (crops) is what the retries re-roll.
            rng (np.random.Generator): Draws the class and the image.

        Returns:
            tuple[dict, dict]: The sample and ``dict(rcs_class, index,
            attempts, class_pixels)``; ``attempts`` counts pipeline runs
            (1 .. ``max_retries + 1``).
        """
        cls = self.sample_class(rng)
        index = self.sample_image(cls, rng)
        sample = fetch(index)
        attempts = 1
        pixels = None
        if self.min_crop_ratio > 0:
            pixels = int((gt_sem_seg_of(sample) == cls).sum())
            while (pixels <= self.crop_threshold
                   and attempts <= self.max_retries):
                sample = fetch(index)
                attempts += 1
                pixels = int((gt_sem_seg_of(sample) == cls).sum())
        return sample, dict(
            rcs_class=cls, index=index, attempts=attempts,
            class_pixels=pixels)

    def draw_cropped(self, load: Callable[[int], Optional[dict]],
                     crop: Callable[[dict], Optional[dict]],
                     finish: Callable[[dict], Optional[dict]],
                     rng: np.random.Generator,
                     fetch: Optional[Callable[[int], dict]] = None
                     ) -> Tuple[dict, dict]:
        """Like :meth:`draw`, but only the crop is retried.

        The same acceptance rule as :meth:`draw` (the crop must hold
        ``> min_pixels * min_crop_ratio`` pixels of the class, at most
        ``max_retries`` re-crops, then the last crop is kept), tested on
        the label map right after the crop; the transforms after the crop
        then run once, on the kept crop. See
        :mod:`mmplugins.datasets.crop_split`.

        Args:
            load (Callable[[int], dict]): Transforms before the crop, on an
                index (decode, resize); run once.
            crop (Callable[[dict], dict]): One random crop of the loaded
                results, which it must not modify (each retry crops them
                afresh).
            finish (Callable[[dict], dict]): Transforms after the crop (flip,
                photometric, ``DualBranchAug``, pack); run once.
            rng (np.random.Generator): Draws the class and the image.
            fetch (Callable[[int], dict], optional): Whole pipeline with the
                dataset's refetch rule, used when a stage returns None (a
                transform rejected the sample), as ``draw`` would have.

        Returns:
            tuple[dict, dict]: The sample and ``dict(rcs_class, index,
            attempts, class_pixels, pipeline_runs)``; ``attempts`` counts
            crops (1 .. ``max_retries + 1``), ``pipeline_runs`` runs of the
            transforms after the crop (1).
        """
        cls = self.sample_class(rng)
        index = self.sample_image(cls, rng)
        info = dict(rcs_class=cls, index=index, attempts=0,
                    class_pixels=None, pipeline_runs=0)

        def rejected():
            if fetch is None:
                raise RuntimeError(
                    f'rare class sampling: the source pipeline rejected '
                    f'image {index} (a transform returned None)')
            info['pipeline_runs'] += 1
            return fetch(index), info

        loaded = load(index)
        if loaded is None:
            return rejected()
        cropped = crop(loaded)
        info['attempts'] = 1
        if cropped is None:
            return rejected()
        if self.min_crop_ratio > 0:
            pixels = int((gt_sem_seg_of(cropped) == cls).sum())
            while (pixels <= self.crop_threshold
                   and info['attempts'] <= self.max_retries):
                cropped = crop(loaded)
                info['attempts'] += 1
                if cropped is None:
                    return rejected()
                pixels = int((gt_sem_seg_of(cropped) == cls).sum())
            info['class_pixels'] = pixels
        del loaded  # the full-size arrays are not needed any more
        sample = finish(cropped)
        info['pipeline_runs'] = 1
        if sample is None:
            return rejected()
        return sample, info


__all__ = [
    'rcs_class_probs', 'rcs_image_lists', 'gt_sem_seg_of',
    'RareClassSampler'
]
