"""Fisheye / lens distortion: simulate the target camera on source data.

Reference semantics (pure functions, unit-tested on their own):

* :func:`fisheye_theta` inverts the polynomial equidistant fisheye model of
  OpenCV's ``cv2.fisheye`` (``theta_d = theta * (1 + k1 theta^2 + k2 theta^4
  + k3 theta^6 + k4 theta^8)``) with vectorised Newton steps.
* :func:`fisheye_maps` builds, for an output (fisheye) image of size
  ``(h, w)``, the source (pinhole) pixel each output pixel samples, plus the
  mask of output pixels that see valid source content.

Geometry. Both cameras share the principal point (image centre). The output
pixel at distance ``r_d`` from the centre looks at the off-axis angle
``theta`` of the fisheye model with focal ``f``; the pinhole source shows
that ray at ``r_u = focal_scale * f * tan(theta)``. ``strength`` fixes ``f``
so that the output *corner* looks at ``strength * 90`` degrees off-axis:
``strength=0`` is the pinhole itself (identity), larger values compress the
source towards the centre and push its borders (then its corners) out of the
frame. Output pixels whose ray leaves the source image, reaches 90 degrees,
or falls outside the optional image circle get the image fill value and the
label ``seg_fill`` (255, ignored). Near the centre the mapping is locally
the identity times ``focal_scale`` — hence "centre preserved" at
``focal_scale=1``.
"""
import math
from collections import OrderedDict
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmplugins.registry import register_module

Range = Union[float, Tuple[float, float]]

#: Rays at or beyond this angle are invalid for the pinhole (tan -> inf).
_MAX_THETA = math.pi / 2 * 0.999


def fisheye_theta(theta_d: np.ndarray,
                  k: Sequence[float] = (0., 0., 0., 0.),
                  num_iters: int = 20,
                  tol: float = 1e-7) -> Tuple[np.ndarray, np.ndarray]:
    """Invert ``theta_d = theta (1 + k1 t^2 + k2 t^4 + k3 t^6 + k4 t^8)``.

    Args:
        theta_d (np.ndarray): Distorted angles (radians, >= 0), any shape.
        k (Sequence[float]): Up to four polynomial coefficients
            ``(k1, k2, k3, k4)``; missing ones are zero.
        num_iters (int): Newton iterations. Defaults to 20.
        tol (float): Residual below which a solution counts as converged.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``theta`` (float64) and a bool mask of
        converged entries on the increasing branch of the polynomial (where
        the model is invertible); elsewhere ``theta`` is meaningless.
    """
    k = tuple(float(v) for v in k) + (0., ) * (4 - len(k))
    theta_d = np.asarray(theta_d, dtype=np.float64)
    if not any(k):  # plain equidistant model: nothing to invert
        return theta_d.copy(), np.ones(theta_d.shape, dtype=bool)
    k1, k2, k3, k4 = k
    theta = theta_d.copy()
    for _ in range(num_iters):
        t2 = theta * theta
        poly = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        deriv = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
        # a flat/decreasing polynomial has no unique inverse: stop moving
        step = np.where(deriv > 1e-6, (poly - theta_d) / np.maximum(
            deriv, 1e-6), 0.)
        theta = np.clip(theta - step, 0., math.pi)
    t2 = theta * theta
    poly = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
    deriv = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
    ok = (np.abs(poly - theta_d) < tol * np.maximum(1., theta_d)) & (deriv > 0)
    return theta, ok


def fisheye_maps(h: int,
                 w: int,
                 strength: float,
                 focal_scale: float = 1.0,
                 k: Sequence[float] = (0., 0., 0., 0.),
                 circle_radius: Optional[float] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source coordinates sampled by every pixel of the fisheye output.

    Args:
        h (int): Image height (output = source size).
        w (int): Image width.
        strength (float): ``>= 0``; the output corner looks at
            ``strength * 90`` degrees off-axis. 0 = pinhole (no warp).
        focal_scale (float): Pinhole focal / fisheye focal, ``> 0``.
            ``< 1`` zooms in (fills more of the frame), ``> 1`` zooms out.
        k (Sequence[float]): Polynomial coefficients ``k1..k4`` of the
            equidistant fisheye model (OpenCV ``cv2.fisheye`` convention).
        circle_radius (float, optional): Radius of the valid image circle as
            a fraction of the half image diagonal (1.0 passes through the
            corners); pixels outside are invalid. None = no circle.

    Returns:
        tuple: ``map_x``, ``map_y`` (float32, ``(h, w)``, source pixel
        coordinates; -1 where invalid) and ``valid`` (bool ``(h, w)``).
    """
    cx, cy = (w - 1) / 2., (h - 1) / 2.
    half_diag = math.hypot(w / 2., h / 2.)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xs - cx, ys - cy
    r_d = np.hypot(dx, dy)
    valid = np.ones((h, w), dtype=bool)
    if strength == 0:
        # limit f -> inf of f * tan(theta(r_d / f)): a pure zoom
        ratio = np.full((h, w), float(focal_scale))
    else:
        f = half_diag / (strength * math.pi / 2)
        theta, ok = fisheye_theta(r_d / f, k)
        valid &= ok & (theta < _MAX_THETA)
        r_u = focal_scale * f * np.tan(np.where(valid, theta, 0.))
        # ratio r_u / r_d, with its limit at the centre pixel (r_d -> 0)
        ratio = np.where(r_d > 1e-9, r_u / np.maximum(r_d, 1e-9),
                         float(focal_scale))
    map_x = cx + dx * ratio
    map_y = cy + dy * ratio
    if circle_radius is not None:
        valid &= r_d <= circle_radius * half_diag
    # integer-exact coordinates stay exact in float32 (identity round trip)
    valid &= (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    map_x = np.where(valid, map_x, -1.).astype(np.float32)
    map_y = np.where(valid, map_y, -1.).astype(np.float32)
    return map_x, map_y, valid


def _check_range(name: str, value, low: float, low_inclusive: bool = True
                 ) -> Tuple[float, float]:
    """Validate a float or ``(min, max)`` range; return it as a pair."""
    if isinstance(value, Number) and not isinstance(value, bool):
        pair = (float(value), float(value))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, Number) for v in value)):
        pair = (float(value[0]), float(value[1]))
    else:
        raise ValueError(f'{name} must be a number or a (min, max) pair, '
                         f'but got {name}={value!r}')
    if pair[0] > pair[1]:
        raise ValueError(f'{name} range must have min <= max, but got '
                         f'{name}={value!r}')
    if (pair[0] < low) if low_inclusive else (pair[0] <= low):
        op = '>=' if low_inclusive else '>'
        raise ValueError(f'{name} must be {op} {low}, but got '
                         f'{name}={value!r}')
    return pair


@register_module('transforms')
class FisheyeDistortion(BaseTransform):
    """Warp image and labels with a parametric fisheye (radial) lens model.

    Simulates a fisheye target camera on pinhole source data (see the module
    docstring for the geometry). Image and every label map in
    ``results['seg_fields']`` (default ``['gt_seg_map']``) are warped with
    the same map: image bilinear, labels nearest (no new class ids). Output
    pixels without valid source content get ``img_fill`` / ``seg_fill``.

    Required keys: ``img``. Modified keys: ``img``, the label maps listed in
    ``seg_fields`` that are present. Added key: ``fisheye_params`` (the
    parameters drawn for this sample). The image size does not change.

    Args:
        strength (float | tuple[float, float]): Field-of-view strength
            ``>= 0`` (output corner sees ``strength * 90`` degrees); a
            ``(min, max)`` pair draws it per sample. Defaults to 0.5.
        focal_scale (float | tuple[float, float]): Pinhole / fisheye focal
            ratio ``> 0``, or a ``(min, max)`` pair. Defaults to 1.0.
        k (Sequence[float]): Up to four polynomial coefficients ``k1..k4``
            of the equidistant model (``cv2.fisheye`` convention). Defaults
            to zeros (pure equidistant fisheye).
        circle_radius (float, optional): Valid image circle radius as a
            fraction of the half image diagonal (``> 0``); None disables it.
            Defaults to None.
        prob (float): Probability to apply the warp. Defaults to 1.0.
        img_fill (float | Sequence[float]): Image value outside the valid
            area. Defaults to 0 (black, like real fisheye corners).
        seg_fill (int): Label value outside the valid area (0..255).
            Defaults to 255 (ignored by mmseg losses and metrics).
        levels (int): Random ranges are drawn from ``levels`` evenly spaced
            values so that the map cache stays small. Defaults to 8.
        cache_size (int): Maps kept per transform instance (LRU, keyed by
            ``(h, w, params)``; each dataloader worker has its own).
            Defaults to 16.

    Note:
        Computing a map costs far more than applying it, so maps are cached:
        with fixed parameters and a fixed crop size every sample after the
        first is a cache hit (``cache_info()`` reports hits / misses).
    """

    def __init__(self,
                 strength: Range = 0.5,
                 focal_scale: Range = 1.0,
                 k: Sequence[float] = (0., 0., 0., 0.),
                 circle_radius: Optional[float] = None,
                 prob: float = 1.0,
                 img_fill: Union[float, Sequence[float]] = 0,
                 seg_fill: int = 255,
                 levels: int = 8,
                 cache_size: int = 16):
        self.strength = _check_range('strength', strength, 0.)
        self.focal_scale = _check_range('focal_scale', focal_scale, 0.,
                                        low_inclusive=False)
        if (not isinstance(k, (tuple, list)) or len(k) > 4
                or not all(isinstance(v, Number) for v in k)):
            raise ValueError('k must be a sequence of at most 4 numbers '
                             f'(k1..k4), but got k={k!r}')
        self.k = tuple(float(v) for v in k) + (0., ) * (4 - len(k))
        if circle_radius is not None and not (
                isinstance(circle_radius, Number) and circle_radius > 0):
            raise ValueError('circle_radius must be None or a number > 0, '
                             f'but got circle_radius={circle_radius!r}')
        self.circle_radius = (None if circle_radius is None else
                              float(circle_radius))
        if not (isinstance(prob, Number) and 0 <= prob <= 1):
            raise ValueError(f'prob must be in [0, 1], but got prob={prob!r}')
        self.prob = float(prob)
        self.img_fill = img_fill
        if not (isinstance(seg_fill, int) and 0 <= seg_fill <= 255):
            raise ValueError('seg_fill must be an int in [0, 255], but got '
                             f'seg_fill={seg_fill!r}')
        self.seg_fill = seg_fill
        if not (isinstance(levels, int) and levels >= 2):
            raise ValueError(f'levels must be an int >= 2, but got '
                             f'levels={levels!r}')
        self.levels = levels
        if not (isinstance(cache_size, int) and cache_size >= 1):
            raise ValueError('cache_size must be an int >= 1, but got '
                             f'cache_size={cache_size!r}')
        self.cache_size = cache_size
        self._cache: 'OrderedDict[tuple, tuple]' = OrderedDict()
        self._hits = 0
        self._misses = 0

    # -- parameters ---------------------------------------------------------
    def _draw(self, pair: Tuple[float, float]) -> float:
        low, high = pair
        if low == high:
            return low
        # quantised draw: bounded number of distinct maps in the cache
        step = np.random.randint(self.levels)
        return round(low + (high - low) * step / (self.levels - 1), 6)

    def draw_params(self) -> dict:
        """Draw the parameters of one sample (uses ``np.random``)."""
        return dict(strength=self._draw(self.strength),
                    focal_scale=self._draw(self.focal_scale),
                    k=self.k, circle_radius=self.circle_radius)

    # -- maps ---------------------------------------------------------------
    def get_maps(self, h: int, w: int, params: dict) -> tuple:
        """Cached ``(img_map1, img_map2, seg_map, valid)`` for cv2.remap."""
        key = (h, w, params['strength'], params['focal_scale'], params['k'],
               params['circle_radius'])
        hit = self._cache.get(key)
        if hit is not None:
            self._hits += 1
            self._cache.move_to_end(key)
            return hit
        self._misses += 1
        map_x, map_y, valid = fisheye_maps(h, w, **params)
        # fixed-point maps: ~2x faster bilinear remap on the loading path
        img_map1, img_map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        # labels: nearest = rounded source pixel, as integer coordinates, so
        # that cv2 cannot interpolate and -1 lands on the border value
        seg_map = np.stack([np.rint(map_x), np.rint(map_y)],
                           axis=-1).astype(np.int16)
        entry = (img_map1, img_map2, seg_map, valid)
        self._cache[key] = entry
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def cache_info(self) -> dict:
        """Cache statistics: ``hits``, ``misses``, ``size``."""
        return dict(hits=self._hits, misses=self._misses,
                    size=len(self._cache))

    # -- application --------------------------------------------------------
    def warp(self, img: np.ndarray, segs: Sequence[np.ndarray],
             params: dict) -> Tuple[np.ndarray, list]:
        """Warp ``img`` and label maps ``segs`` with ``params``."""
        h, w = img.shape[:2]
        img_map1, img_map2, seg_map, valid = self.get_maps(h, w, params)
        fill = self.img_fill
        if isinstance(fill, Number):
            fill = (fill, ) * 4
        out = cv2.remap(img, img_map1, img_map2, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT,
                        borderValue=tuple(float(v) for v in fill))
        if out.ndim == 2 and img.ndim == 3:
            out = out[..., None]
        # bilinear taps straddling the border blend in the fill: force it
        out[~valid] = np.asarray(self.img_fill, dtype=out.dtype)
        outs = []
        for seg in segs:
            if seg.shape[:2] != (h, w):
                raise ValueError('FisheyeDistortion: label map shape '
                                 f'{seg.shape[:2]} differs from image '
                                 f'shape {(h, w)}')
            warped = cv2.remap(seg, seg_map, None, cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT,
                               borderValue=self.seg_fill)
            warped[~valid] = self.seg_fill
            outs.append(warped)
        return out, outs

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError("FisheyeDistortion needs results['img'] (put it "
                           'after LoadImageFromFile)')
        if self.prob < 1 and np.random.rand() >= self.prob:
            return results
        params = self.draw_params()
        keys = [key for key in results.get('seg_fields', ['gt_seg_map'])
                if key in results]
        img, segs = self.warp(results['img'], [results[k] for k in keys],
                              params)
        results['img'] = img
        for key, seg in zip(keys, segs):
            results[key] = seg
        results['fisheye_params'] = params
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strength={self.strength}, '
                f'focal_scale={self.focal_scale}, k={self.k}, '
                f'circle_radius={self.circle_radius}, prob={self.prob}, '
                f'img_fill={self.img_fill}, seg_fill={self.seg_fill})')
