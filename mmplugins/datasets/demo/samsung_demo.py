"""A small synthetic domain-shift dataset laid out like the Samsung challenge.

:func:`make_samsung_demo` writes street scenes in exactly the layout of the
2023 Samsung camera-invariant domain adaptation challenge (see
:mod:`mmplugins.datasets.samsung_camera`), so code written for the challenge
runs on the demo unchanged:

* **source** (``train_source``, ``val_source``): pinhole camera, sunny
  daylight style, labelled;
* **target** (``train_target`` unlabelled, ``val_target`` labelled for
  evaluation only, ``test`` unlabelled): the *same scene distribution* seen
  through an equidistant fisheye lens (dark corners outside the image
  circle, label 255 there) in an overcast dusk style with a softer, noisier
  sensor and different materials (grey sky, olive vegetation, darker
  asphalt).

Reference semantics, as pure functions:

* :func:`sample_layout` draws one scene's geometry in metres (camera,
  road, sidewalks, facades, poles, lights, signs, trees, fences, persons,
  riders, cars); it uses only the layout random stream, so both domains share
  one layout distribution.
* :func:`render_scene` rasterises a layout with a :data:`STYLES` entry
  (perspective planes and boxes, painter's order, vectorised numpy).
* :func:`fisheye_maps` / :func:`apply_fisheye` implement the lens: an output
  pixel at ``r`` from the centre sees the ray at ``theta = (r / R) *
  theta_max`` (equidistant model), which the pinhole source shows at
  ``f_src * tan(theta)``; image bilinear, label nearest, outside -> dark/255.
* :func:`render_sample` = layout + style + lens for one ``(split, index)``;
  its random streams are derived from ``(seed, split, index)`` only, so any
  number of worker processes writes the same bytes.

Class ids follow :data:`mmplugins.datasets.samsung_camera.CLASSES`; small
classes (traffic light/sign, person, rider) are rare and small on purpose.
"""
import csv
import multiprocessing as mp
import os
import os.path as osp
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from mmplugins.datasets.samsung_camera import CLASSES

(ROAD, SIDEWALK, CONSTRUCTION, FENCE, POLE, LIGHT, SIGN, NATURE, SKY, PERSON,
 RIDER, CAR) = range(12)
IGNORE = 255
NUM_CLASSES = len(CLASSES)

#: split -> (folder prefix, file-name prefix, domain, labelled)
SPLITS = OrderedDict([
    ('train_source', ('train_source', 'TRAIN_SOURCE', 'source', True)),
    ('val_source', ('val_source', 'VAL_SOURCE', 'source', True)),
    ('train_target', ('train_target', 'TRAIN_TARGET', 'target', False)),
    ('val_target', ('val_target', 'VALID_TARGET', 'target', True)),
    ('test', ('test', 'TEST', 'target', False)),
])
# fixed codes (not dict order) so adding a split never changes other bytes
_SPLIT_CODE = dict(train_source=0, val_source=1, train_target=2, val_target=3,
                   test=4)
_CAM_HEIGHT = 1.5  # metres; every size below is in metres


def _c(*rgb):
    return np.array(rgb, dtype=np.float32).reshape(-1, 3) / 255.


#: Per-domain look. Colours are RGB candidates (one is picked, then
#: jittered); ``tex_fine`` / ``tex_mid`` are per-class amplitudes of the
#: fine / mid-scale luminance noise; the rest is lighting and sensor.
STYLES = dict(
    source=dict(
        sky_top=_c((45, 105, 195), (70, 135, 215), (35, 90, 175)),
        sky_horizon=_c((175, 205, 235), (195, 215, 240), (160, 195, 230)),
        cloud=_c((245, 245, 248)), cloud_cover=(0.0, 0.55), cloud_cell=6,
        road=_c((92, 92, 98), (108, 106, 110), (80, 82, 88)),
        paint=_c((235, 235, 230)),
        sidewalk=_c((165, 160, 152), (178, 160, 138), (150, 118, 108),
                    (140, 140, 146)),
        grass=_c((95, 150, 60), (115, 160, 70), (80, 135, 55)),
        building=_c((205, 192, 168), (165, 92, 72), (142, 142, 140),
                    (222, 220, 214), (182, 160, 118), (112, 102, 96)),
        window=_c((55, 75, 105), (40, 48, 60), (110, 140, 175)),
        nature=_c((58, 118, 40), (38, 98, 48), (88, 138, 58), (50, 88, 34)),
        trunk=_c((90, 65, 45), (70, 55, 45)),
        fence=_c((150, 150, 156), (122, 92, 62), (88, 90, 96)),
        pole=_c((112, 112, 118), (72, 72, 78), (150, 150, 152)),
        light_body=_c((32, 32, 34), (50, 58, 48)),
        lamps=_c((235, 40, 30), (245, 175, 20), (40, 225, 95)),
        sign=_c((205, 30, 30), (30, 80, 200), (240, 200, 20), (20, 130, 60)),
        sign_inner=_c((245, 245, 245)),
        clothes=_c((32, 32, 42), (200, 42, 42), (42, 62, 150), (222, 222, 222),
                   (92, 72, 52), (62, 122, 62), (165, 160, 42)),
        skin=_c((232, 192, 160), (172, 122, 92), (112, 80, 60)),
        car=_c((222, 222, 228), (30, 30, 36), (162, 166, 172), (172, 30, 30),
               (30, 52, 132), (100, 100, 106)),
        car_glass=_c((40, 46, 58)), tyre=_c((22, 22, 22)),
        tail=_c((220, 20, 20)), bike=_c((38, 38, 40)),
        # fine / mid luminance-noise amplitude per class id
        tex_fine=(0.10, 0.06, 0.04, 0.05, 0.03, 0.02, 0.02, 0.16, 0.01, 0.04,
                  0.04, 0.03),
        tex_mid=(0.06, 0.05, 0.08, 0.04, 0.02, 0.02, 0.02, 0.25, 0.02, 0.06,
                 0.06, 0.04),
        sun_side=0.62,       # shaded facade side brightness (sunny)
        gain=(1.0, 1.0, 1.0), gamma=1.0, saturation=1.0, contrast=1.0,
        blur=0.0, noise=0.012, focal_scale=1.0, fisheye=None),
    target=dict(
        sky_top=_c((118, 132, 160), (150, 150, 162), (104, 118, 148)),
        sky_horizon=_c((226, 204, 178), (212, 208, 204), (232, 192, 160)),
        cloud=_c((150, 146, 148)), cloud_cover=(0.3, 0.9), cloud_cell=3,
        road=_c((78, 78, 84), (70, 72, 76), (90, 86, 84)),
        paint=_c((215, 190, 90)),
        sidewalk=_c((128, 124, 120), (118, 108, 98), (146, 134, 118),
                    (104, 108, 112)),
        grass=_c((122, 128, 62), (140, 132, 70), (100, 112, 58)),
        building=_c((150, 145, 140), (122, 80, 70), (100, 100, 106),
                    (172, 166, 150), (90, 86, 80), (132, 120, 100)),
        window=_c((210, 180, 110), (30, 30, 34), (70, 70, 80)),
        nature=_c((102, 110, 40), (82, 92, 40), (122, 118, 50), (70, 86, 46)),
        trunk=_c((70, 55, 45), (60, 50, 42)),
        fence=_c((120, 120, 124), (100, 80, 60), (160, 160, 150)),
        pole=_c((90, 90, 92), (60, 60, 62), (130, 128, 120)),
        light_body=_c((45, 42, 38), (70, 66, 30)),
        lamps=_c((255, 70, 50), (255, 200, 60), (80, 255, 160)),
        sign=_c((180, 40, 40), (40, 90, 170), (220, 190, 50), (40, 120, 70)),
        sign_inner=_c((220, 215, 200)),
        clothes=_c((32, 32, 42), (200, 42, 42), (42, 62, 150), (222, 222, 222),
                   (92, 72, 52), (62, 122, 62), (165, 160, 42)),
        skin=_c((232, 192, 160), (172, 122, 92), (112, 80, 60)),
        car=_c((222, 222, 228), (30, 30, 36), (162, 166, 172), (172, 30, 30),
               (30, 52, 132), (100, 100, 106)),
        car_glass=_c((70, 64, 58)), tyre=_c((22, 22, 22)),
        tail=_c((255, 60, 30)), bike=_c((38, 38, 40)),
        tex_fine=(0.16, 0.10, 0.06, 0.05, 0.04, 0.03, 0.03, 0.08, 0.03, 0.05,
                  0.05, 0.05),
        tex_mid=(0.10, 0.08, 0.05, 0.04, 0.02, 0.02, 0.02, 0.12, 0.05, 0.05,
                 0.05, 0.04),
        sun_side=0.92,       # overcast: both facade sides lit alike
        gain=(1.05, 0.98, 0.88), gamma=1.15, saturation=0.8, contrast=0.9,
        blur=0.6, noise=0.025,
        # wider-angle optics: the pinhole render uses 0.7x the focal length,
        # then the lens (which magnifies ~1.8x at its centre) squeezes the
        # periphery -> centre objects ~1.3x source size, edges ~0.35x
        focal_scale=0.7, fisheye=dict(fov_deg=125., circle=0.49)),
)

# ---------------------------------------------------------------- helpers


def _pick(rng, colours, jitter=0.04):
    """One candidate colour, brightness-jittered, with a faint tint."""
    c = colours[rng.integers(len(colours))]
    c = c * (1 + rng.normal(0, 2 * jitter)) + rng.normal(0, jitter / 4, 3)
    return np.clip(c, 0, 1).astype(np.float32)


def _noise2d(rng, h, w, cell):
    """Smooth value noise (~unit std) with features of ``cell`` pixels."""
    cell = max(float(cell), 1.0)
    gh, gw = int(h / cell) + 3, int(w / cell) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int(round((gw - 1) * cell)),
                            int(round((gh - 1) * cell))),
                     interpolation=cv2.INTER_CUBIC)
    return big[:h, :w] * 1.6


def _noise1d(rng, x, spacing):
    """Smooth 1-d noise (~unit std) of ``x`` with knots every ``spacing``."""
    lo = float(np.min(x)) - spacing
    n = int((float(np.max(x)) - lo) / spacing) + 3
    knots = rng.standard_normal(n)
    return np.interp(x, lo + spacing * np.arange(n), knots)


def _frac(x):
    return x - np.floor(x)  # faster than x % 1.0


def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _hash01(i, j, salt):
    """Deterministic pseudo-random [0, 1) per integer cell (window lights)."""
    h = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663)
    h = (h ^ salt) % 1000
    return h / 1000.


# ------------------------------------------------------------ the layout


def _blocks(rng, start, stop, kinds):
    """Consecutive blocks ``[edges[i], edges[i+1])``, kind drawn per block.

    ``kinds`` maps kind -> (probability, (min_len, max_len), (min_h, max_h)).
    """
    names = list(kinds)
    probs = np.array([kinds[k][0] for k in names])
    edges, kind, height = [start], [], []
    while edges[-1] < stop:
        k = names[rng.choice(len(names), p=probs / probs.sum())]
        edges.append(edges[-1] + rng.uniform(*kinds[k][1]))
        kind.append(k)
        height.append(rng.uniform(*kinds[k][2]))
    return dict(edges=np.array(edges), kind=kind, height=np.array(height))


def sample_layout(rng: np.random.Generator, height: int, width: int) -> dict:
    """Draw one street scene's geometry (metres, camera at height 1.5 m).

    Args:
        rng (np.random.Generator): The layout random stream.
        height (int): Image height in pixels.
        width (int): Image width in pixels.

    Returns:
        dict: ``cam`` (f, xv, yh), road edges ``a``/``b`` (left/right, m),
        sidewalk widths ``sl``/``sr``, ``d_far`` (street end), facade
        ``sides`` blocks, ``back`` wall blocks, lane ``marks`` and
        ``objects`` (dicts with ``kind`` and ``depth``).
    """
    H, W = height, width
    cam = dict(f=W * rng.uniform(0.5, 0.62), xv=W * rng.uniform(0.42, 0.58),
               yh=H * rng.uniform(0.36, 0.48))
    a, b = rng.uniform(2.6, 6.5, size=2)
    sl, sr = (rng.uniform(1.5, 4.5, size=2) *
              (rng.random(2) < 0.92))  # some streets lack a sidewalk
    d_far = rng.uniform(45, 120)
    sides = {}
    for side in (-1, 1):
        sides[side] = _blocks(
            rng, 0.3, d_far,
            OrderedDict(building=(0.55, (8, 32), (5, 28)),
                        nature=(0.33, (5, 22), (2.5, 9)),
                        open=(0.12, (3, 12), (0, 0))))
    t_far = cam['f'] / d_far
    # twice the pinhole's width: wider-angle renders see more of the wall
    back = _blocks(rng, -2 * W / t_far, 2 * W / t_far,
                   OrderedDict(building=(0.7, (8, 30), (6, 36)),
                               nature=(0.3, (6, 20), (5, 13))))
    marks = dict(
        lanes=[x for x in np.arange(-a + 3.3, b - 1.0, 3.3)],
        dash=rng.uniform(2.5, 4.0), period=rng.uniform(8, 12),
        edge_lines=bool(rng.random() < 0.5),
        crosswalk=(float(rng.uniform(6, 25)) if rng.random() < 0.2 else None))
    edge = {-1: a, 1: b}
    walk = {-1: sl, 1: sr}
    objects = []

    def on_sidewalk(side, lo=0.25, hi=0.85):
        w = max(walk[side], 0.9)
        return side * (edge[side] + w * rng.uniform(lo, hi))

    for _ in range(rng.integers(1, 6)):  # poles, some carry lights / signs
        side = int(rng.choice([-1, 1]))
        light = None
        if rng.random() < 0.22:
            light = dict(arm=(rng.uniform(1.5, 4.0)
                              if rng.random() < 0.6 else 0.0),
                         lamp=int(rng.integers(3)))
        sign = None
        if rng.random() < 0.3:
            sign = dict(z=rng.uniform(2.0, 3.2), size=rng.uniform(0.5, 0.8),
                        shape=int(rng.integers(3)))
        objects.append(dict(
            kind='pole', side=side,
            x=side * (edge[side] + rng.uniform(0.25, 0.7)),
            depth=_loguniform(rng, 4, 60), height=rng.uniform(4, 9),
            width=rng.uniform(0.14, 0.26), light=light, sign=sign))
    for _ in range(rng.integers(0, 4)):  # street trees
        side = int(rng.choice([-1, 1]))
        objects.append(dict(
            kind='tree', x=on_sidewalk(side, 0.5, 0.9),
            depth=_loguniform(rng, 5, 60), trunk=rng.uniform(1.8, 3.2),
            radius=rng.uniform(1.2, 2.6)))
    for _ in range(rng.poisson(0.8)):  # pedestrians, mostly on sidewalks
        side = int(rng.choice([-1, 1]))
        x = (on_sidewalk(side) if rng.random() < 0.85 else
             rng.uniform(-a + 0.5, b - 0.5))
        objects.append(dict(kind='person', x=x,
                            depth=_loguniform(rng, 5, 45),
                            height=rng.uniform(1.55, 1.9),
                            stride=rng.uniform(-0.05, 0.05)))
    if rng.random() < 0.22:  # riders keep to the road edge
        side = int(rng.choice([-1, 1]))
        objects.append(dict(kind='rider',
                            x=side * (edge[side] - rng.uniform(0.6, 1.4)),
                            depth=_loguniform(rng, 6, 40),
                            motor=bool(rng.random() < 0.35)))
    parked = {-1: False, 1: False}
    for side in (-1, 1):
        if edge[side] > 3.6 and rng.random() < 0.6:
            parked[side] = True
            d = _loguniform(rng, 4, 25)
            for _ in range(rng.integers(1, 4)):
                length = rng.uniform(4.0, 4.8)
                objects.append(dict(kind='parked', side=side, depth=d,
                                    length=length, width=rng.uniform(1.7, 1.9),
                                    height=rng.uniform(1.4, 1.65),
                                    x_out=side * (edge[side] - 0.2)))
                d += length + rng.uniform(0.6, 8)
    lo = -a + (2.6 if parked[-1] else 1.1)
    hi = b - (2.6 if parked[1] else 1.1)
    if hi > lo:
        for _ in range(rng.integers(0, 5)):  # traffic in the lanes
            van = rng.random() < 0.15
            objects.append(dict(kind='car', x=rng.uniform(lo, hi),
                                depth=_loguniform(rng, 6, 70),
                                width=rng.uniform(1.7, 1.95),
                                height=(rng.uniform(1.9, 2.4) if van else
                                        rng.uniform(1.4, 1.65))))
    fences = []
    for side in (-1, 1):
        if rng.random() < 0.35:
            fences.append(dict(side=side, depth=rng.uniform(2, 30),
                               length=rng.uniform(6, 30),
                               height=rng.uniform(0.9, 1.7)))
    # painter's order: far first
    objects.sort(key=lambda o: -o['depth'])
    return dict(cam=cam, a=a, b=b, sl=sl, sr=sr, d_far=d_far, sides=sides,
                back=back, marks=marks, objects=objects, fences=fences,
                height=H, width=W)


# ------------------------------------------------------------- rendering


class _Canvas:
    """Image + label being painted, with the projection of the layout."""

    def __init__(self, lay, rng, style):
        self.H, self.W = lay['height'], lay['width']
        self.f, self.xv, self.yh = (lay['cam'][k] for k in ('f', 'xv', 'yh'))
        # a shorter focal length keeps the horizon and vanishing point in
        # place relative to the image centre but widens the view
        k = style['focal_scale']
        self.f *= k
        self.xv = self.W / 2 + (self.xv - self.W / 2) * k
        self.yh = self.H / 2 + (self.yh - self.H / 2) * k
        self.img = np.zeros((self.H, self.W, 3), np.float32)
        self.lab = np.full((self.H, self.W), IGNORE, np.uint8)
        self.rng, self.style = rng, style
        self.xs = np.arange(self.W, dtype=np.float32) + 0.5
        self.ys = np.arange(self.H, dtype=np.float32) + 0.5

    def colour(self, key, jitter=0.04):
        return _pick(self.rng, self.style[key], jitter)

    def paint(self, box, mask, cls, colour):
        """Paint ``mask`` (inside ``box`` slices) with a class and colour."""
        # copyto(where=) is much faster than fancy indexing for big masks
        np.copyto(self.img[box], colour, where=mask[..., None])
        np.copyto(self.lab[box], np.uint8(cls), where=mask)

    def front(self, depth, x0, x1, z0, z1):
        """A box facing the camera at ``depth``: (slices, X grid, Z grid)."""
        t = self.f / depth
        c0 = max(int(np.floor(self.xv + t * x0)), 0)
        c1 = min(int(np.ceil(self.xv + t * x1)), self.W)
        r0 = max(int(np.floor(self.yh + t * (_CAM_HEIGHT - z1))), 0)
        r1 = min(int(np.ceil(self.yh + t * (_CAM_HEIGHT - z0))), self.H)
        if c1 <= c0 or r1 <= r0:
            return None
        X = (self.xs[c0:c1] - self.xv) / t
        Z = _CAM_HEIGHT - (self.ys[r0:r1] - self.yh) / t
        return (slice(r0, r1), slice(c0, c1)), X[None, :], Z[:, None]

    def side_plane(self, x_plane, d0, d1, z_top, z_bottom=0.0):
        """A wall along the road at lateral ``x_plane`` for depths d0..d1.

        ``z_top(D)`` gives the top height per column. Returns (slices, mask,
        D per column (1, w), Z grid (h, w)) or None when off-screen.
        """
        t = (self.xs - self.xv) / x_plane
        with np.errstate(divide='ignore'):
            D = np.where(t > 1e-6, self.f / np.maximum(t, 1e-6), np.inf)
        cols = np.flatnonzero((D >= d0) & (D < d1))
        if cols.size == 0:
            return None
        c0, c1 = cols[0], cols[-1] + 1
        tc, Dc = t[c0:c1], D[c0:c1]
        ztop = z_top(Dc)
        ytop = self.yh + tc * (_CAM_HEIGHT - ztop)
        ybot = self.yh + tc * (_CAM_HEIGHT - z_bottom)
        r0 = max(int(np.floor(ytop.min())), 0)
        r1 = min(int(np.ceil(ybot.max())), self.H)
        if r1 <= r0:
            return None
        ys = self.ys[r0:r1, None]
        mask = (ys >= ytop[None]) & (ys < ybot[None])
        Z = _CAM_HEIGHT - (ys - self.yh) / tc[None]
        return (slice(r0, r1), slice(c0, c1)), mask, Dc[None], Z


def _draw_sky_and_ground(cv, lay):
    H, W, st, rng = cv.H, cv.W, cv.style, cv.rng
    v = np.clip(cv.ys / max(cv.yh, 1.0), 0, 1)[:, None, None] ** 0.7
    sky = cv.colour('sky_top') * (1 - v) + cv.colour('sky_horizon') * v
    sky = np.broadcast_to(sky, (H, W, 3)).copy()
    clouds = (_noise2d(rng, H, W, H / st['cloud_cell']) +
              0.5 * _noise2d(rng, H, W, H / (3 * st['cloud_cell'])))
    cover = rng.uniform(*st['cloud_cover'])
    alpha = np.clip((clouds - 1.6 * (1 - cover)) * 0.8, 0, 1)[..., None]
    cv.img[:] = sky * (1 - alpha) + cv.colour('cloud', 0.02) * alpha
    cv.lab[:] = SKY
    # ground plane below the horizon
    r0 = int(np.ceil(cv.yh))
    ys = cv.ys[r0:, None]
    t = (ys - cv.yh) / _CAM_HEIGHT
    X = (cv.xs[None] - cv.xv) / t
    D = cv.f / t
    box = (slice(r0, H), slice(0, W))
    a, b, sl, sr = lay['a'], lay['b'], lay['sl'], lay['sr']
    road = (X >= -a) & (X <= b)
    walk = ((X >= -a - sl) & (X < -a)) | ((X > b) & (X <= b + sr))
    grass = ~(road | walk)
    shape = road.shape
    cv.paint(box, grass, NATURE, np.broadcast_to(cv.colour('grass'),
                                                 shape + (3, )))
    # tiles: darker joints every 0.5 m in both directions
    joint = ((np.abs(_frac(2 * X) - 0.5) > 0.44) |
             (np.abs(_frac(2 * D) - 0.5) > 0.44))
    kerb = (np.abs(X + a) < 0.15) | (np.abs(X - b) < 0.15)
    walk_rgb = np.broadcast_to(cv.colour('sidewalk'), shape + (3, )).copy()
    walk_rgb[joint] *= 0.82
    walk_rgb[kerb] = walk_rgb[kerb] * 0.5 + 0.42
    cv.paint(box, walk, SIDEWALK, walk_rgb)
    road_rgb = np.broadcast_to(cv.colour('road'), shape + (3, )).copy()
    patches = _noise2d(rng, *shape, cell=max(H / 10, 2))[..., None]
    road_rgb *= 1 + 0.07 * patches
    mk = lay['marks']
    paint = np.zeros(shape, bool)
    dashes = _frac(D / mk['period']) < mk['dash'] / mk['period']
    for lx in mk['lanes']:
        paint |= (np.abs(X - lx) < 0.07) & dashes
    if mk['edge_lines']:
        paint |= (np.abs(X + a - 0.3) < 0.06) | (np.abs(X - b + 0.3) < 0.06)
    if mk['crosswalk'] is not None:
        dc = mk['crosswalk']
        paint |= (D > dc) & (D < dc + 3) & (_frac(X) < 0.5)
    road_rgb[paint] = cv.colour('paint', 0.03)
    cv.paint(box, road, ROAD, road_rgb)


def _facade_colours(cv, blocks):
    n = len(blocks['kind'])
    base = np.zeros((n, 3), np.float32)
    win = np.zeros((n, 3), np.float32)
    for i, kind in enumerate(blocks['kind']):
        base[i] = cv.colour('building' if kind == 'building' else 'nature',
                            0.05)
        win[i] = cv.colour('window')
    return base, win


def _draw_back_wall(cv, lay):
    back = lay['back']
    d = lay['d_far']
    t = cv.f / d
    X = (cv.xs - cv.xv) / t
    idx = np.clip(np.searchsorted(back['edges'], X) - 1, 0,
                  len(back['kind']) - 1)
    nature = np.array([k == 'nature' for k in back['kind']])[idx]
    ztop = back['height'][idx] + nature * 1.2 * _noise1d(cv.rng, X, 2.0)
    ytop = cv.yh + t * (_CAM_HEIGHT - ztop)
    ybot = cv.yh + t * _CAM_HEIGHT
    ys = cv.ys[:, None]
    mask = (ys >= ytop[None]) & (ys < ybot)
    base, _ = _facade_colours(cv, back)
    haze = 0.35  # distant things fade towards the horizon colour
    rgb = base[idx][None] * (1 - haze) + cv.img * haze
    lab = np.where(nature, NATURE, CONSTRUCTION).astype(np.uint8)
    box = (slice(0, cv.H), slice(0, cv.W))
    img, labv = cv.img[box], cv.lab[box]
    img[mask] = rgb[mask]
    labv[mask] = np.broadcast_to(lab[None], mask.shape)[mask]


def _draw_facades(cv, lay):
    edge = {-1: lay['a'] + lay['sl'], 1: lay['b'] + lay['sr']}
    lit_side = int(cv.rng.choice([-1, 1]))
    for side in (-1, 1):
        blocks = lay['sides'][side]
        nb = len(blocks['kind'])
        kind = np.array([{'building': 0, 'nature': 1, 'open': 2}[k]
                         for k in blocks['kind']])

        def ztop(D, blocks=blocks, kind=kind, rng=cv.rng):
            i = np.clip(np.searchsorted(blocks['edges'], D) - 1, 0, nb - 1)
            z = blocks['height'][i].astype(np.float32)
            bumps = 0.9 * _noise1d(rng, D, 1.5)  # tree-line, not a ruler
            return np.where(kind[i] == 1, z + bumps,
                            np.where(kind[i] == 2, 0.0, z))

        reg = cv.side_plane(side * edge[side], 0.0, lay['d_far'], ztop)
        if reg is None:
            continue
        box, mask, D, Z = reg
        i = np.clip(np.searchsorted(blocks['edges'], D) - 1, 0, nb - 1)
        base, win = _facade_colours(cv, blocks)
        rgb = np.broadcast_to(base[i], mask.shape + (3, )).copy()
        building = np.broadcast_to(kind[i] == 0, mask.shape)
        # windows on a per-block grid (perspective-correct: world coords)
        spacing = 2.6 + (i % 3) * 0.5
        u = (D - blocks['edges'][i]) / spacing
        floor = (Z - 1.0) / 3.2
        fu, ff = _frac(u), _frac(floor)
        in_win = ((fu > 0.25) & (fu < 0.75) & (ff > 0.3) & (ff < 0.8) &
                  (Z > 1.2) & (Z < blocks['height'][i] - 0.8) & building)
        col = np.broadcast_to(np.floor(u), floor.shape)
        lit = _hash01(col, np.floor(floor), 7 + side) < 0.15
        wrgb = np.broadcast_to(win[i], mask.shape + (3, )).copy()
        wrgb[lit] = wrgb[lit] * 0.3 + 0.65
        rgb[in_win] = wrgb[in_win]
        shade = 1.0 if side == lit_side else cv.style['sun_side']
        cls = np.where(kind[i] == 1, NATURE, CONSTRUCTION).astype(np.uint8)
        mask &= np.broadcast_to(kind[i] != 2, mask.shape)
        img, lab = cv.img[box], cv.lab[box]
        img[mask] = rgb[mask] * shade
        lab[mask] = np.broadcast_to(cls, mask.shape)[mask]
    return lit_side


def _draw_fence(cv, lay, fence):
    side = fence['side']
    edge = (lay['a'] + lay['sl']) if side < 0 else (lay['b'] + lay['sr'])
    h = fence['height']
    reg = cv.side_plane(side * (edge - 0.05), fence['depth'],
                        fence['depth'] + fence['length'],
                        lambda D: np.full_like(D, h))
    if reg is None:
        return
    box, mask, D, Z = reg
    colour = cv.colour('fence')
    bars = ((D % 0.25) < 0.08) | ((D % 2.5) < 0.15) | (Z > h - 0.12) | \
        (np.abs(Z - 0.3) < 0.05)
    bars = np.broadcast_to(bars, mask.shape)
    rgb = cv.img[box] * 0.45 + colour * 0.55  # see-through mesh
    rgb[bars] = colour
    cv.paint(box, mask, FENCE, rgb)


def _draw_pole(cv, o):
    side, x, d, h, w = o['side'], o['x'], o['depth'], o['height'], o['width']
    colour = cv.colour('pole')
    reg = cv.front(d, x - w / 2, x + w / 2, 0, h)
    if reg is not None:
        box, X, Z = reg
        cv.paint(box, np.ones((Z.shape[0], X.shape[1]), bool), POLE, colour)
    if o['light'] is not None:
        arm = o['light']['arm']
        if arm > 0:  # mast arm over the road, light hanging at its end
            xe = x - side * arm
            reg = cv.front(d, min(x, xe), max(x, xe), h - 0.25, h - 0.1)
            if reg is not None:
                box, X, Z = reg
                cv.paint(box, np.ones((Z.shape[0], X.shape[1]), bool), POLE,
                         colour)
            xl, z1 = xe, h - 0.25
        else:  # pedestrian signal on the pole itself
            xl, z1 = x - side * (w / 2 + 0.17), min(3.0, h - 0.3)
        reg = cv.front(d, xl - 0.17, xl + 0.17, z1 - 0.9, z1)
        if reg is not None:
            box, X, Z = reg
            mask = np.ones((Z.shape[0], X.shape[1]), bool)
            body = cv.colour('light_body', 0.02)
            rgb = np.broadcast_to(body, mask.shape + (3, )).copy()
            lamp = o['light']['lamp']
            zc = z1 - 0.17 - 0.28 * lamp
            on = ((X - xl) ** 2 + (Z - zc) ** 2) < 0.1 ** 2
            rgb[np.broadcast_to(on, mask.shape)] = \
                cv.style['lamps'][lamp]
            cv.paint(box, mask, LIGHT, rgb)
    if o['sign'] is not None:
        s = o['sign']
        r = s['size'] / 2
        reg = cv.front(d - 0.05, x - r, x + r, s['z'] - r, s['z'] + r)
        if reg is not None:
            box, X, Z = reg
            u, v = (X - x) / r, (Z - s['z']) / r
            if s['shape'] == 0:
                rr = u ** 2 + v ** 2
                mask, inner = rr < 1, rr < 0.55
            elif s['shape'] == 1:
                mask = (np.abs(u) < 1) & (np.abs(v) < 0.8)
                inner = (np.abs(u) < 0.75) & (np.abs(v) < 0.55)
            else:  # warning triangle, apex up
                mask = (v > -0.8) & (np.abs(u) < (1 - v) * 0.55)
                inner = (v > -0.55) & (np.abs(u) < (0.6 - v) * 0.45)
            mask = np.broadcast_to(mask, (Z.shape[0], X.shape[1]))
            inner = np.broadcast_to(inner, mask.shape)
            rgb = np.broadcast_to(cv.colour('sign'), mask.shape + (3, )).copy()
            if cv.rng.random() < 0.6:
                rgb[inner] = cv.colour('sign_inner', 0.02)
            cv.paint(box, mask, SIGN, rgb)


def _draw_tree(cv, o):
    x, d, trunk, r = o['x'], o['depth'], o['trunk'], o['radius']
    reg = cv.front(d, x - 0.13, x + 0.13, 0, trunk + r)
    if reg is not None:
        box, X, Z = reg
        cv.paint(box, np.ones((Z.shape[0], X.shape[1]), bool), NATURE,
                 cv.colour('trunk'))
    zc = trunk + r * 0.8
    reg = cv.front(d, x - 1.3 * r, x + 1.3 * r, zc - 1.3 * r, zc + 1.3 * r)
    if reg is None:
        return
    box, X, Z = reg
    ang = np.arctan2(Z - zc, X - x)
    k = cv.rng.uniform(0, 2 * np.pi, 3)
    # a lumpy crown: a few random harmonics on the radius
    rad = r * (1 + 0.12 * np.sin(3 * ang + k[0]) +
               0.08 * np.sin(5 * ang + k[1]) + 0.05 * np.sin(9 * ang + k[2]))
    mask = np.hypot(X - x, (Z - zc) * 1.1) < rad
    cv.paint(box, mask, NATURE, cv.colour('nature'))


def _person_mask(X, Z, x, h, stride):
    u, v = (X - x) / h, Z / h
    head = u ** 2 + (v - 0.925) ** 2 < 0.065 ** 2
    torso = (np.abs(u) < 0.13 - 0.03 * (0.86 - v)) & (v >= 0.5) & (v < 0.865)
    arms = (np.abs(u) >= 0.12) & (np.abs(u) < 0.165) & (v > 0.56) & (v < 0.84)
    legs = ((np.abs(u + 0.055 + stride * (0.5 - v)) < 0.045) |
            (np.abs(u - 0.055 - stride * (0.5 - v)) < 0.045)) & (v < 0.5)
    return head, torso | arms, legs


def _draw_person(cv, o, cls=PERSON, x=None, z0=0.0, h=None):
    x = o['x'] if x is None else x
    h = o.get('height', 1.75) if h is None else h
    reg = cv.front(o['depth'], x - 0.2 * h, x + 0.2 * h, z0, z0 + h)
    if reg is None:
        return
    box, X, Z = reg
    head, top, legs = _person_mask(X, Z - z0, x, h, o.get('stride', 0.0))
    shape = (Z.shape[0], X.shape[1])
    rgb = np.zeros(shape + (3, ), np.float32)
    rgb[np.broadcast_to(top, shape)] = cv.colour('clothes', 0.06)
    rgb[np.broadcast_to(legs, shape)] = cv.colour('clothes', 0.06) * 0.7
    rgb[np.broadcast_to(head, shape)] = cv.colour('skin')
    cv.paint(box, np.broadcast_to(head | top | legs, shape), cls, rgb)


def _draw_rider(cv, o):
    x, d = o['x'], o['depth']
    half = 0.3 if o['motor'] else 0.04
    reg = cv.front(d + 0.05, x - half - 0.3, x + half + 0.3, 0, 1.15)
    if reg is not None:  # the bike: background (no bicycle class)
        box, X, Z = reg
        u = X - x
        wheel = (np.abs(u) < half) & (Z < (0.9 if o['motor'] else 0.7))
        bar = (np.abs(u) < 0.32) & (np.abs(Z - 1.05) < 0.04)
        mask = np.broadcast_to(wheel | bar, (Z.shape[0], X.shape[1]))
        cv.paint(box, mask, IGNORE, cv.colour('bike'))
    # the rider sits higher: legs from the pedals, body above the saddle
    _draw_person(cv, o, cls=RIDER, x=x, z0=0.25, h=1.6)


def _draw_car(cv, o):
    x, d, w, h = o['x'], o['depth'], o['width'], o['height']
    reg = cv.front(d, x - w / 2, x + w / 2, 0, h)
    if reg is None:
        return
    box, X, Z = reg
    u = np.abs(X - x)
    zc = 0.6 * h
    body = (u < w / 2) & (Z >= 0.18) & (Z < zc)
    cabin = (Z >= zc) & (Z < h) & (u < w / 2 * (1 - 0.22 * (Z - zc) /
                                              (h - zc)))
    glass = cabin & (Z > zc + 0.06) & (Z < h - 0.07) & (u < w / 2 * 0.7)
    wheels = (u > w / 2 - 0.38) & (u < w / 2 - 0.08) & (Z < 0.3)
    tail = (u > w / 2 - 0.32) & (u < w / 2 - 0.04) & (Z > zc - 0.22) & \
        (Z < zc - 0.08)
    shape = (Z.shape[0], X.shape[1])
    rgb = np.broadcast_to(cv.colour('car', 0.05), shape + (3, )).copy()
    for part, key in ((glass, 'car_glass'), (wheels, 'tyre'),
                      (tail, 'tail')):
        rgb[np.broadcast_to(part, shape)] = cv.colour(key, 0.02)
    cv.paint(box, np.broadcast_to(body | cabin | wheels, shape), CAR, rgb)


def _draw_parked(cv, o):
    side, d, L, w, h = o['side'], o['depth'], o['length'], o['width'], \
        o['height']
    x_in = o['x_out'] - side * w
    colour = cv.colour('car', 0.05)
    glass = cv.colour('car_glass', 0.02)
    tyre = cv.colour('tyre', 0.02)

    def profile(D):
        s = (D - d) / L
        cab = np.clip(np.minimum((s - 0.2) / 0.1, (0.8 - s) / 0.12), 0, 1)
        return 0.6 * h + 0.4 * h * cab

    reg = cv.side_plane(x_in, d, d + L, profile, z_bottom=0.0)
    if reg is not None:
        box, mask, D, Z = reg
        s = (D - d) / L
        shape = mask.shape
        rgb = np.broadcast_to(colour, shape + (3, )).copy()
        win = (Z > 0.62 * h) & (Z < profile(D) - 0.07) & (s > 0.27) & \
            (s < 0.76)
        wheel = ((np.minimum(np.abs(s - 0.17), np.abs(s - 0.83)) * L) ** 2 +
                 (Z - 0.32) ** 2) < 0.32 ** 2
        rgb[np.broadcast_to(win, shape)] = glass
        rgb[np.broadcast_to(wheel, shape)] = tyre
        mask &= np.broadcast_to((Z > 0.18) | wheel, shape)
        cv.paint(box, mask, CAR, rgb)
    lo, hi = sorted((x_in, o['x_out']))
    _draw_car(cv, dict(x=(lo + hi) / 2, depth=d, width=hi - lo, height=h))


def render_scene(layout: dict, rng: np.random.Generator,
                 style: dict) -> Tuple[np.ndarray, np.ndarray]:
    """Rasterise a :func:`sample_layout` scene in a style (pinhole camera).

    Args:
        layout (dict): From :func:`sample_layout`.
        rng (np.random.Generator): The texture/colour random stream.
        style (dict): One of :data:`STYLES`.

    Returns:
        tuple: float32 RGB image in [0, 1] (HxWx3, before the sensor model)
        and uint8 label (HxW, ids 0..11, 255 for bikes).
    """
    cv = _Canvas(layout, rng, style)
    _draw_sky_and_ground(cv, layout)
    _draw_back_wall(cv, layout)
    _draw_facades(cv, layout)
    for fence in layout['fences']:
        _draw_fence(cv, layout, fence)
    draw = dict(pole=_draw_pole, tree=_draw_tree, person=_draw_person,
                rider=_draw_rider, car=_draw_car, parked=_draw_parked)
    for o in layout['objects']:
        draw[o['kind']](cv, o)
    # class-dependent texture: fine grain and mid-scale blotches
    H, W = cv.H, cv.W
    lab = np.minimum(cv.lab, NUM_CLASSES)  # 255 -> the extra last entry
    fine = np.append(np.asarray(style['tex_fine'], np.float32), 0.05)
    mid = np.append(np.asarray(style['tex_mid'], np.float32), 0.05)
    tex = (fine[lab] * rng.standard_normal((H, W), dtype=np.float32) +
           mid[lab] * _noise2d(rng, H, W, max(H / 64, 1.5)))
    img = cv.img * (1 + tex[..., None])
    return np.clip(img, 0, 1), cv.lab


# ------------------------------------------------------------ the lens


@lru_cache(maxsize=8)
def fisheye_maps(height: int, width: int, fov_deg: float = 125.,
                 circle: float = 0.49) -> Tuple[np.ndarray, np.ndarray,
                                                np.ndarray]:
    """Remap tables of the target camera (equidistant fisheye).

    The image circle has radius ``R = circle * width`` around the image
    centre; a pixel at distance ``r`` sees the ray at angle ``theta = r / R *
    fov / 2``. The pinhole source shows that ray at ``f_src * tan(theta)``
    pixels from its centre, where ``f_src`` maps the middle of the left and
    right image borders onto the source's borders.

    Args:
        height (int): Image height.
        width (int): Image width.
        fov_deg (float): Field of view across the image circle (< 180).
        circle (float): Image-circle radius as a fraction of the width;
            with ``0.49`` and a 2:1 image the corners (~6%) fall outside.

    Returns:
        tuple: ``map_x``, ``map_y`` (float32, HxW, source pixel coordinates
        for ``cv2.remap``) and ``valid`` (bool HxW: inside the image circle
        and inside the source image).
    """
    if not 0 < fov_deg < 180:
        raise ValueError(f'fov_deg must be in (0, 180), but got {fov_deg}')
    cx, cy = width / 2., height / 2.
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
    r = np.hypot(dx, dy)
    R = circle * width
    half = np.deg2rad(fov_deg) / 2
    theta = r / R * half
    f_src = cx / np.tan(cx / R * half)
    r_src = f_src * np.tan(np.minimum(theta, np.pi / 2 * 0.99))
    scale = np.where(r > 0, r_src / np.maximum(r, 1e-9), f_src / R * half)
    map_x = (cx + dx * scale - 0.5).astype(np.float32)
    map_y = (cy + dy * scale - 0.5).astype(np.float32)
    valid = ((r <= R) & (map_x >= -0.5) & (map_x <= width - 0.5) &
             (map_y >= -0.5) & (map_y <= height - 0.5))
    for arr in (map_x, map_y, valid):  # cached: callers must not edit them
        arr.flags.writeable = False
    return map_x, map_y, valid


def apply_fisheye(img: np.ndarray, label: np.ndarray,
                  **kwargs) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp a pinhole image (bilinear) and label (nearest) to the fisheye.

    Pixels outside the image circle or the source become 0 / 255.

    Returns:
        tuple: warped image, warped label, ``valid`` mask.
    """
    h, w = label.shape
    map_x, map_y, valid = fisheye_maps(h, w, **kwargs)
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    lab = cv2.remap(label, map_x, map_y, cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE)
    out[~valid] = 0
    lab[~valid] = IGNORE
    return out, lab, valid


@lru_cache(maxsize=8)
def _vignette(h, w, circle, strength=0.45):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rho = np.hypot(xx + 0.5 - w / 2, yy + 0.5 - h / 2) / (circle * w)
    return (1 - strength * rho ** 3).astype(np.float32)


def _sensor(img, rng, style, valid=None):
    """Lighting and camera response of a domain (float RGB in [0, 1])."""
    if style['gain'] != (1.0, 1.0, 1.0):
        img = img * np.asarray(style['gain'], np.float32)
    if style['gamma'] != 1.0:
        img = cv2.pow(np.clip(img, 0, 1), style['gamma'])
    if style['saturation'] != 1.0:
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * style['saturation']
    if style['contrast'] != 1.0:
        img = 0.5 + (img - 0.5) * style['contrast']
    if style['blur'] > 0:
        img = cv2.GaussianBlur(img, (0, 0), style['blur'])
    if valid is not None:  # lens vignetting towards the circle's rim
        img = img * _vignette(*valid.shape,
                              style['fisheye']['circle'])[..., None]
    img = img + style['noise'] * rng.standard_normal(img.shape,
                                                     dtype=np.float32)
    if valid is not None:
        # the dark border of a real fisheye frame is not exactly zero
        dark = rng.uniform(0, 0.02, img.shape[:2]).astype(np.float32)
        img[~valid] = dark[~valid, None]
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def render_sample(split: str, index: int, seed: int = 0, height: int = 256,
                  width: int = 512) -> Tuple[np.ndarray, np.ndarray]:
    """Render image ``index`` of ``split``: (RGB uint8 HxWx3, label HxW).

    The random streams come from ``SeedSequence([seed, split code,
    index])`` alone: the bytes do not depend on worker processes or order.
    """
    if split not in SPLITS:
        raise KeyError(f'unknown split {split!r}; expected one of '
                       f'{list(SPLITS)}')
    domain = SPLITS[split][2]
    style = STYLES[domain]
    ss = np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index)])
    layout_ss, tex_ss, sensor_ss = ss.spawn(3)
    layout = sample_layout(np.random.default_rng(layout_ss), height, width)
    img, lab = render_scene(layout, np.random.default_rng(tex_ss), style)
    valid = None
    if style['fisheye']:
        img, lab, valid = apply_fisheye(img, lab, **style['fisheye'])
    img = _sensor(img, np.random.default_rng(sensor_ss), style, valid)
    return img, lab


# ---------------------------------------------------------- the writer


def _write_one(job):
    split, index, seed, height, width, out_dir = job
    folder, prefix, _, labelled = SPLITS[split]
    name = f'{prefix}_{index:04d}.png'
    img, lab = render_sample(split, index, seed, height, width)
    writes = [(osp.join(out_dir, f'{folder}_image', name),
               cv2.cvtColor(img, cv2.COLOR_RGB2BGR))]
    if labelled:
        writes.append((osp.join(out_dir, f'{folder}_gt', name), lab))
    for path, array in writes:
        if not cv2.imwrite(path, array):
            raise OSError(f'make_samsung_demo: could not write {path}')
    return split, np.bincount(lab.ravel(), minlength=256)


def make_samsung_demo(out_dir: str,
                      num_train_source: int = 200,
                      num_val_source: int = 50,
                      num_train_target: int = 200,
                      num_val_target: int = 50,
                      num_test: int = 50,
                      height: int = 256,
                      width: int = 512,
                      seed: int = 0,
                      num_workers: Optional[int] = None) -> Dict:
    """Write the demo dataset (images, labels, CSV index files).

    Args:
        out_dir (str): Output folder (created; existing files of the same
            names are overwritten).
        num_train_source (int): Labelled source training images.
        num_val_source (int): Labelled source validation images.
        num_train_target (int): Unlabelled target training images.
        num_val_target (int): Labelled target images (evaluation only).
        num_test (int): Unlabelled target test images.
        height (int): Image height. Defaults to 256.
        width (int): Image width. Defaults to 512.
        seed (int): Dataset seed; the same seed gives the same bytes.
        num_workers (int, optional): Processes to render with; None uses
            ``min(os.cpu_count(), 8)``, 0 or 1 renders in this process. The
            output does not depend on it.

    Returns:
        dict: ``out_dir``, ``counts`` per split, ``csv`` paths, ``seconds``,
        ``class_freq`` (per domain: fraction of labelled pixels per class,
        plus ``ignore``, over the labelled splits) and ``presence`` (per
        domain: fraction of labelled images containing each class).
    """
    counts = OrderedDict(train_source=num_train_source,
                         val_source=num_val_source,
                         train_target=num_train_target,
                         val_target=num_val_target, test=num_test)
    for key, n in counts.items():
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f'make_samsung_demo: num_{key} must be an int '
                             f'>= 0, but got {n!r}')
    if height < 32 or width < 32:
        raise ValueError(f'make_samsung_demo: height and width must be >= '
                         f'32, but got {height}x{width}')
    t0 = time.time()
    for split, (folder, _, _, labelled) in SPLITS.items():
        os.makedirs(osp.join(out_dir, f'{folder}_image'), exist_ok=True)
        if labelled:
            os.makedirs(osp.join(out_dir, f'{folder}_gt'), exist_ok=True)
    jobs = [(split, i, seed, height, width, out_dir)
            for split, n in counts.items() for i in range(n)]
    if num_workers is None:
        num_workers = min(os.cpu_count() or 1, 8)
    if num_workers > 1 and len(jobs) > 8:
        ctx = mp.get_context(
            'fork' if 'fork' in mp.get_all_start_methods() else 'spawn')
        # no cv2.setNumThreads() in the workers: reconfiguring OpenCV's
        # thread pool in a forked child can deadlock when the parent has
        # already used it
        with ctx.Pool(num_workers) as pool:
            results = pool.map(_write_one, jobs, chunksize=4)
    else:
        results = [_write_one(job) for job in jobs]
    # class statistics of the labelled splits, per domain
    hist = {d: np.zeros(256, np.int64) for d in ('source', 'target')}
    present = {d: np.zeros(256, np.int64) for d in ('source', 'target')}
    n_lab = {'source': 0, 'target': 0}
    for split, h in results:
        _, _, domain, labelled = SPLITS[split]
        if labelled:
            hist[domain] += h
            present[domain] += h > 0
            n_lab[domain] += 1
    class_freq, presence = {}, {}
    for d in hist:
        total = max(int(hist[d].sum()), 1)
        class_freq[d] = OrderedDict(
            (c, float(hist[d][i]) / total) for i, c in enumerate(CLASSES))
        class_freq[d]['ignore'] = float(hist[d][IGNORE]) / total
        presence[d] = OrderedDict(
            (c, float(present[d][i]) / max(n_lab[d], 1))
            for i, c in enumerate(CLASSES))
    csvs = _write_csvs(out_dir, counts)
    return dict(out_dir=out_dir, counts=dict(counts), csv=csvs,
                height=height, width=width, seed=seed,
                seconds=time.time() - t0, class_freq=class_freq,
                presence=presence)


def _write_csvs(out_dir, counts):
    paths = {}
    for split, (folder, prefix, _, labelled) in SPLITS.items():
        path = osp.join(out_dir, f'{split}.csv')
        with open(path, 'w', newline='') as f:
            writer = csv.writer(f, lineterminator='\n')
            writer.writerow(['id', 'img_path', 'gt_path'] if labelled else
                            ['id', 'img_path'])
            for i in range(counts[split]):
                name = f'{prefix}_{i:04d}'
                row = [name, f'./{folder}_image/{name}.png']
                if labelled:
                    row.append(f'./{folder}_gt/{name}.png')
                writer.writerow(row)
        paths[split] = path
    return paths
