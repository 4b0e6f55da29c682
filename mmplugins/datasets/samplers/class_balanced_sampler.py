"""Class-balanced sampling: every class drawn equally often in expectation.

The mask-competition teams fought the rare ``>=60`` age class (~8 % of the
images) with ``torch.utils.data.WeightedRandomSampler`` and weights
``1 / frequency(class of the sample)``. That sampler is single-process; this
one draws the same distribution once per epoch from a seed shared by all
ranks and gives each rank a disjoint slice of the draw, like mmengine's
``DefaultSampler`` does with a permutation.
"""
from collections import Counter
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmplugins.registry import register_module


def inverse_frequency_weights(labels: Sequence) -> np.ndarray:
    """Sampling weight of every sample: ``1 / count(its label)``.

    Normalised to sum to 1, so each distinct label gets probability
    ``1 / num_distinct_labels``.
    """
    labels = list(labels)
    if not labels:
        raise ValueError('cannot balance an empty dataset')
    counts = Counter(labels)
    w = np.array([1. / counts[lab] for lab in labels], dtype=np.float64)
    return w / w.sum()


def _label_of(info: dict, label_key: str, index: int):
    if label_key not in info:
        raise KeyError(f'ClassBalancedSampler: data sample {index} has no '
                       f'{label_key!r} (keys: {sorted(info)}); set label_key '
                       'to the field holding its class')
    lab = info[label_key]
    if isinstance(lab, (list, tuple, np.ndarray)):
        lab = np.asarray(lab).reshape(-1)
        if lab.size != 1:
            raise ValueError('ClassBalancedSampler needs one class per '
                             f'sample, but sample {index} has {label_key}='
                             f'{info[label_key]!r}')
        lab = lab[0]
    return int(lab) if isinstance(lab, (int, np.integer)) else lab


@register_module('data_samplers')
class ClassBalancedSampler(Sampler):
    """Draw samples with probability ``1 / frequency`` of their class.

    Args:
        dataset (Dataset): Dataset whose ``get_data_info(i)[label_key]`` is
            the class used for balancing (any hashable: an int, the joint
            18-class code, or a group label such as ``'age_label'``).
        label_key (str): Field of the data info to balance. Defaults to
            ``'gt_label'``.
        num_samples (int, optional): Samples drawn per epoch over *all*
            ranks (rounded up to a multiple of the world size). Defaults to
            ``len(dataset)``.
        replacement (bool): Draw with replacement (``WeightedRandomSampler``'s
            default; needed to oversample a rare class). Defaults to True.
        seed (int, optional): Base seed; the epoch is added so every epoch is
            a fresh draw. ``None`` syncs a random seed across ranks.
            Defaults to None.

    Note:
        Every rank draws the same ``num_samples`` indices from
        ``seed + epoch`` and keeps positions ``rank::world_size``, so the
        ranks' slices are disjoint and together form one weighted draw. The
        Runner builds the sampler with ``dataset=`` and ``seed=`` and calls
        :meth:`set_epoch` at every epoch.
    """

    def __init__(self,
                 dataset,
                 label_key: str = 'gt_label',
                 num_samples: Optional[int] = None,
                 replacement: bool = True,
                 seed: Optional[int] = None):
        if num_samples is not None and (not isinstance(num_samples, int)
                                        or num_samples <= 0):
            raise ValueError('num_samples must be a positive int or None, '
                             f'but got {num_samples!r}')
        if len(dataset) == 0:
            raise ValueError('ClassBalancedSampler got an empty dataset')
        if not replacement and num_samples is not None and \
                num_samples > len(dataset):
            raise ValueError(f'num_samples={num_samples} > len(dataset)='
                             f'{len(dataset)} needs replacement=True')
        self.dataset = dataset
        self.label_key = label_key
        self.replacement = replacement
        self.rank, self.world_size = get_dist_info()
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0

        self.labels: List = [
            _label_of(dataset.get_data_info(i), label_key, i)
            for i in range(len(dataset))
        ]
        self.weights = torch.as_tensor(
            inverse_frequency_weights(self.labels), dtype=torch.float64)
        total = len(dataset) if num_samples is None else num_samples
        self.num_samples = -(-total // self.world_size)  # per rank
        self.total_size = self.num_samples * self.world_size
        if not replacement and self.total_size > len(dataset):
            self.total_size = len(dataset) // self.world_size * \
                self.world_size
            self.num_samples = self.total_size // self.world_size

    def draw(self) -> torch.Tensor:
        """This epoch's full draw (all ranks), identical on every rank."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.multinomial(
            self.weights, self.total_size, self.replacement, generator=g)

    def __iter__(self) -> Iterator[int]:
        indices = self.draw()[self.rank:self.total_size:self.world_size]
        return iter(indices.tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Reseed the draw for ``epoch`` (called by the Runner)."""
        self.epoch = epoch
