"""ClassBalancedSampler: balanced frequencies, disjoint ranks, epochs."""
from collections import Counter

import numpy as np
import pytest

from mmplugins.datasets.samplers import class_balanced_sampler as cbs
from mmplugins.datasets.samplers.class_balanced_sampler import (
    ClassBalancedSampler, inverse_frequency_weights)

# chi-square critical values at p = 0.001
CHI2_999 = {2: 13.82, 17: 40.79}


class ListDataset:
    """Minimal dataset with get_data_info, as mmengine datasets have."""

    def __init__(self, labels, key='gt_label'):
        self.infos = [{key: v, 'other': i} for i, v in enumerate(labels)]

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, idx):
        return dict(self.infos[idx])


def _chi2(counts, k):
    total = sum(counts.values())
    exp = total / k
    return sum((counts.get(c, 0) - exp)**2 / exp for c in range(k))


def test_weights_are_inverse_frequency():
    w = inverse_frequency_weights([0, 0, 0, 1])
    assert w.tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 2])


def test_frequencies_converge_to_balanced():
    # 1000 / 100 / 10 images: the rare class must come up a third of the time
    labels = [0] * 1000 + [1] * 100 + [2] * 10
    ds = ListDataset(labels)
    sampler = ClassBalancedSampler(ds, num_samples=60000, seed=3)
    drawn = Counter(labels[i] for i in sampler)
    assert sum(drawn.values()) == 60000
    assert _chi2(drawn, 3) < CHI2_999[2]
    # the 18-way joint code, 1/freq of the joint class
    rng = np.random.default_rng(0)
    joint = rng.choice(18, size=3000, p=np.r_[np.full(17, .055), .065])
    joint[:5] = 17  # make sure every class exists
    sampler = ClassBalancedSampler(ListDataset(joint.tolist()),
                                   num_samples=36000, seed=1)
    drawn = Counter(int(joint[i]) for i in sampler)
    assert _chi2(drawn, 18) < CHI2_999[17]


def test_ranks_disjoint_and_cover_one_draw(monkeypatch):
    labels = [0] * 50 + [1] * 7
    ds = ListDataset(labels)
    per_rank = []
    for rank in range(3):
        monkeypatch.setattr(cbs, 'get_dist_info', lambda r=rank: (r, 3))
        s = ClassBalancedSampler(ds, num_samples=100, seed=5)
        s.set_epoch(2)
        per_rank.append(list(s))
        full = s.draw().tolist()
    # rounded up to a multiple of the world size, equal length per rank
    assert [len(p) for p in per_rank] == [34, 34, 34]
    # rank r holds positions r::3 of the same draw: disjoint positions,
    # together exactly the whole draw
    interleaved = [per_rank[i % 3][i // 3] for i in range(102)]
    assert interleaved == full


def test_set_epoch_reshuffles_and_is_deterministic():
    ds = ListDataset([0, 1, 1, 2, 2, 2] * 20)
    a = ClassBalancedSampler(ds, seed=0)
    b = ClassBalancedSampler(ds, seed=0)
    first = list(a)
    assert first == list(b)
    a.set_epoch(1)
    assert list(a) != first
    assert len(a) == len(ds)


def test_label_key_and_bad_input():
    ds = ListDataset([0, 1, 1], key='age_label')
    s = ClassBalancedSampler(ds, label_key='age_label', seed=0,
                             num_samples=7)
    assert len(list(s)) == 7
    with pytest.raises(KeyError, match="has no 'gt_label'"):
        ClassBalancedSampler(ds, seed=0)
    with pytest.raises(ValueError, match='num_samples must be a positive'):
        ClassBalancedSampler(ds, label_key='age_label', num_samples=0)
    s = ClassBalancedSampler(ds, label_key='age_label', seed=0,
                             replacement=False)
    assert sorted(s) == [0, 1, 2]
