"""FisheyeDistortion: geometry, labels, cache, validation."""
import math

import numpy as np
import pytest

import mmplugins  # noqa: F401  (registers the transforms)
from mmplugins.datasets.transforms.fisheye import (FisheyeDistortion,
                                                   fisheye_maps,
                                                   fisheye_theta)


def _sample(toy_pair):
    img, seg = toy_pair
    return dict(img=img.copy(), gt_seg_map=seg.copy(),
                seg_fields=['gt_seg_map'])


def test_strength_zero_is_identity(toy_pair):
    img, seg = toy_pair
    map_x, map_y, valid = fisheye_maps(*seg.shape, strength=0.0)
    ys, xs = np.mgrid[0:seg.shape[0], 0:seg.shape[1]]
    assert valid.all()
    np.testing.assert_array_equal(map_x, xs)
    np.testing.assert_array_equal(map_y, ys)
    out = FisheyeDistortion(strength=0.0)(_sample(toy_pair))
    np.testing.assert_array_equal(out['img'], img)
    np.testing.assert_array_equal(out['gt_seg_map'], seg)


def test_corners_ignored_center_preserved(toy_pair):
    img, seg = toy_pair
    h, w = seg.shape
    out = FisheyeDistortion(strength=0.6, img_fill=0)(_sample(toy_pair))
    dist_img, dist_seg = out['img'], out['gt_seg_map']
    assert dist_img.shape == img.shape and dist_seg.shape == seg.shape
    for y, x in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)]:
        assert dist_seg[y, x] == 255
        assert (dist_img[y, x] == 0).all()
    # corner quadrant mostly invalid, central area unchanged
    assert (dist_seg[:4, :4] == 255).all()
    cy, cx = h // 2, w // 2
    np.testing.assert_array_equal(dist_seg[cy - 1:cy + 2, cx - 1:cx + 2],
                                  seg[cy - 1:cy + 2, cx - 1:cx + 2])
    diff = np.abs(dist_img[cy - 1:cy + 2, cx - 1:cx + 2].astype(int) -
                  img[cy - 1:cy + 2, cx - 1:cx + 2])
    assert diff.max() <= 3
    # nearest interpolation: no new ids, only the original ones + 255
    assert set(np.unique(dist_seg)) <= set(np.unique(seg)) | {255}
    assert 0.05 < (dist_seg == 255).mean() < 0.6
    # source content is compressed towards the centre (barrel): a source
    # pixel at the image border is seen closer to the centre
    map_x, _, valid = fisheye_maps(h, w, 0.6)
    row = h // 2
    inside = np.nonzero(valid[row])[0]
    assert map_x[row, inside[-1]] > inside[-1]


def test_circle_and_strength_monotonic():
    fractions = [fisheye_maps(64, 128, s)[2].mean() for s in (0, .3, .6, .9)]
    assert fractions[0] == 1.0
    assert all(a > b for a, b in zip(fractions, fractions[1:]))
    _, _, valid = fisheye_maps(64, 128, 0.0, circle_radius=0.5)
    ys, xs = np.mgrid[0:64, 0:128]
    r = np.hypot(xs - 63.5, ys - 31.5)
    np.testing.assert_array_equal(valid, r <= 0.5 * math.hypot(64, 32))


def test_polynomial_inverse():
    k = (0.08, -0.01, 0.002, 0.0)
    theta = np.linspace(0, 1.3, 101)
    t2 = theta**2
    theta_d = theta * (1 + k[0] * t2 + k[1] * t2**2 + k[2] * t2**3)
    inv, ok = fisheye_theta(theta_d, k)
    assert ok.all()
    np.testing.assert_allclose(inv, theta, atol=1e-9)


def test_map_cache_hits(toy_pair):
    t = FisheyeDistortion(strength=0.5)
    for _ in range(5):
        t(_sample(toy_pair))
    assert t.cache_info() == dict(hits=4, misses=1, size=1)
    # a random range draws from `levels` values only -> bounded cache
    t = FisheyeDistortion(strength=(0.2, 0.6), levels=3, cache_size=8)
    np.random.seed(0)
    drawn = set()
    for _ in range(30):
        drawn.add(t(_sample(toy_pair))['fisheye_params']['strength'])
    assert drawn == {0.2, 0.4, 0.6}
    info = t.cache_info()
    assert info['misses'] == 3 and info['hits'] == 27


def test_registry_build_and_seeded():
    from mmseg.registry import TRANSFORMS
    t = TRANSFORMS.build(dict(type='FisheyeDistortion', strength=(0.1, 0.9)))
    assert isinstance(t, FisheyeDistortion)
    np.random.seed(3)
    a = [t.draw_params()['strength'] for _ in range(5)]
    np.random.seed(3)
    b = [t.draw_params()['strength'] for _ in range(5)]
    assert a == b


@pytest.mark.parametrize('kwargs, text', [
    (dict(strength=-0.1), 'strength=-0.1'),
    (dict(strength=(0.6, 0.2)), 'strength=(0.6, 0.2)'),
    (dict(focal_scale=0), 'focal_scale=0'),
    (dict(k=(1, 2, 3, 4, 5)), 'k=(1, 2, 3, 4, 5)'),
    (dict(circle_radius=-1), 'circle_radius=-1'),
    (dict(prob=1.5), 'prob=1.5'),
    (dict(seg_fill=300), 'seg_fill=300'),
])
def test_invalid_parameters(kwargs, text):
    with pytest.raises(ValueError, match=text.replace('(', r'\(').replace(
            ')', r'\)')):
        FisheyeDistortion(**kwargs)
