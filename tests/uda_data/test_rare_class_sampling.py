"""Rare class sampling: probabilities, class dropping, re-crop retries."""
import math

import numpy as np
import pytest

from mmplugins.datasets.rare_class_sampling import (RareClassSampler,
                                                    rcs_class_probs,
                                                    rcs_image_lists)


def test_probs_match_softmax_and_sum_to_one():
    counts = {0: 900, 1: 90, 2: 10}
    probs = rcs_class_probs(counts, 0.1)
    assert list(probs) == [0, 1, 2]
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-12)
    # hand computation: f = .9 .09 .01 -> logits (1-f)/T = 1, 9.1, 9.9
    z = np.exp([1.0, 9.1, 9.9])
    expected = z / z.sum()
    np.testing.assert_allclose([probs[c] for c in range(3)], expected,
                               rtol=1e-12)
    # the rarer, the likelier
    assert probs[2] > probs[1] > probs[0]


def test_probs_favour_rare_classes_more_at_low_temperature():
    counts = {0: 5000, 1: 3000, 2: 1500, 3: 400, 4: 100}
    hot = rcs_class_probs(counts, 1.0)
    cold = rcs_class_probs(counts, 0.01)
    for p in (hot, cold):
        assert math.isclose(sum(p.values()), 1.0, abs_tol=1e-12)
        assert [p[c] for c in range(5)] == sorted(p.values())  # increasing
    assert cold[4] > hot[4] and cold[0] < hot[0]
    # T=1 is nearly uniform, T=0.01 clearly not
    assert max(hot.values()) / min(hot.values()) < 2.5
    assert cold[4] / cold[0] > 100


def test_absent_class_gets_zero_without_nan_even_at_tiny_temperature():
    counts = {0: 10**9, 1: 3, 2: 0, 5: 0}
    probs = rcs_class_probs(counts, 1e-4)  # logits up to 1e4: exp overflows
    assert probs[2] == 0.0 and probs[5] == 0.0
    assert all(math.isfinite(p) for p in probs.values())
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-12)
    assert probs[1] == pytest.approx(1.0)


@pytest.mark.parametrize('counts,temp,match', [
    ({0: 0, 1: 0}, 0.01, 'no class has any pixel'),
    ({}, 0.01, 'empty'),
    ({0: -1, 1: 5}, 0.01, '>= 0'),
    ({0: 1, 1: float('nan')}, 0.01, 'finite'),
    ({0: 1}, 0.0, 'temperature: 0.0'),
    ({0: 1}, -1, 'temperature: -1'),
])
def test_bad_input_raises(counts, temp, match):
    with pytest.raises(ValueError, match=match):
        rcs_class_probs(counts, temp)


def test_image_lists_use_min_pixels_inclusive():
    counts = np.array([[10, 0, 5], [3, 7, 0], [0, 7, 6]])
    lists = rcs_image_lists(counts, 6)
    assert lists[0].tolist() == [0]
    assert lists[1].tolist() == [1, 2]
    assert lists[2].tolist() == [2]


def test_sampler_drops_classes_without_eligible_image(capsys):
    # class 2 has pixels but never >= 50 in one image; class 3 never occurs
    counts = np.array([[900, 40, 10, 0], [800, 60, 10, 0], [700, 0, 10, 0]])
    s = RareClassSampler(counts, class_temp=1.0, min_pixels=50)
    assert s.classes.tolist() == [0, 1]
    assert s.class_probs[2] == 0.0 and s.class_probs[3] == 0.0
    assert math.isclose(s.probs.sum(), 1.0)
    # renormalised softmax restricted to the kept classes
    full = rcs_class_probs(dict(enumerate(counts.sum(0).tolist())), 1.0)
    assert s.class_probs[1] == pytest.approx(full[1] / (full[0] + full[1]))
    assert s.images[1].tolist() == [1]
    # a class never drawn over many draws
    rng = np.random.default_rng(0)
    drawn = {s.sample_class(rng) for _ in range(2000)}
    assert drawn == {0, 1}


def test_sampler_empirical_class_frequencies_match_probs():
    counts = np.array([[5000, 300, 100], [4000, 0, 150], [6000, 500, 0]])
    s = RareClassSampler(counts, class_temp=0.01, min_pixels=1)
    rng = np.random.default_rng(1)
    draws = np.array([s.sample_class(rng) for _ in range(20000)])
    freq = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(freq, [s.class_probs[c] for c in range(3)],
                               atol=0.015)
    # images of a class are drawn only among eligible ones
    assert {s.sample_image(2, rng) for _ in range(200)} == {0, 1}


def test_sampler_all_classes_dropped_is_a_clear_error():
    counts = np.array([[10, 5], [12, 3]])
    with pytest.raises(ValueError, match='lower rare_class_sampling.min_pix'):
        RareClassSampler(counts, min_pixels=3000)


@pytest.mark.parametrize('kwargs,match', [
    (dict(min_pixels=-1), 'min_pixels: -1'),
    (dict(min_pixels=2.5), 'min_pixels: 2.5'),
    (dict(min_crop_ratio=-0.1), 'min_crop_ratio: -0.1'),
    (dict(max_retries=-1), 'max_retries: -1'),
    (dict(class_temp=0), 'temperature: 0'),
])
def test_sampler_validates_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RareClassSampler(np.ones((2, 2), np.int64) * 100, **kwargs)


def _scripted_fetch(pixel_sequence, cls):
    """A source whose i-th pipeline run yields a crop with n pixels of cls."""
    calls = []

    def fetch(index):
        n = pixel_sequence[min(len(calls), len(pixel_sequence) - 1)]
        calls.append(index)
        gt = np.zeros(400, np.uint8)
        gt[:n] = cls
        return dict(gt_seg_map=gt.reshape(20, 20))
    return fetch, calls


def test_draw_recrops_until_the_class_is_in_the_crop():
    counts = np.array([[10000, 0], [10000, 200]])
    s = RareClassSampler(counts, class_temp=1e-3, min_pixels=100,
                         min_crop_ratio=0.5)
    assert s.crop_threshold == 50
    rng = np.random.default_rng(0)
    # crops with 0, 50 (not > 50), 51 pixels: accepted at the 3rd run
    fetch, calls = _scripted_fetch([0, 50, 51, 300], cls=1)
    sample, info = s.draw(fetch, rng)
    assert info == dict(rcs_class=1, index=1, attempts=3, class_pixels=51)
    assert calls == [1, 1, 1]  # always the same image, re-cropped
    assert (sample['gt_seg_map'] == 1).sum() == 51


def test_draw_gives_up_after_max_retries():
    counts = np.array([[10000, 0], [10000, 200]])
    s = RareClassSampler(counts, class_temp=1e-3, min_pixels=100,
                         max_retries=10)
    fetch, calls = _scripted_fetch([0], cls=1)  # the class never in a crop
    _, info = s.draw(fetch, np.random.default_rng(0))
    assert info['attempts'] == 11 and len(calls) == 11  # 1 + 10 re-crops
    s0 = RareClassSampler(counts, class_temp=1e-3, min_pixels=100,
                          min_crop_ratio=0)  # ratio 0 = no re-cropping
    fetch, calls = _scripted_fetch([0], cls=1)
    _, info = s0.draw(fetch, np.random.default_rng(0))
    assert info['attempts'] == 1 and info['class_pixels'] is None
