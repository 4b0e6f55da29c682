"""DietSampler: train on a rule-based "diet" subset of an imbalanced dataset.

From the 1st-place solution of the 2021 driver-inattention detection
challenge (a YOLOv5 fork). The raw data had 419k ``eye_opened`` instances
against 12k ``phone`` and 10k ``cigar``; the winners first trained on a
subset chosen by ordered rules (keep every image with a rare object, keep
the informative eye/mouth combinations, thin out the common ones, drop the
rest), each epoch seeing a random 1/N of it, then fine-tuned on the full
distribution. Their rule set, exactly::

    rules=[
        dict(any_of=['cigar', 'phone']),                 # 1 keep
        dict(all_of=['eye_closed', 'mouth_closed']),     # 2 keep
        dict(all_of=['eye_closed', 'mouth_opened']),     # 3 keep
        dict(any_of=['mouth_opened'], keep_every=3),     # 4 every 3rd
    ]                                                    # 5 drop the rest
                                                         #   (default_keep)

Reference semantics are the pure functions below (:func:`parse_rules`,
:func:`diet_select`); :class:`DietSampler` adds the dataset protocol, the
log and the epoch/rank sampling of :class:`EpochPartsSampler`.
"""
import hashlib
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Sized, Tuple

import numpy as np
from mmengine.dist import broadcast_object_list
from mmengine.logging import print_log

from mmplugins.registry import register_module
from ._category_info import (CategoryInfo, category_info_from_dataset,
                             format_histogram)
from .epoch_parts_sampler import EpochPartsSampler

__all__ = ['DietRule', 'DietSelection', 'parse_rules', 'diet_select',
           'DietSampler']

_CONDITION_KEYS = ('any_of', 'all_of', 'none_of')
_RULE_KEYS = _CONDITION_KEYS + ('keep', 'keep_every', 'keep_fraction',
                                'seed', 'name')


@dataclass(frozen=True)
class DietRule:
    """One parsed rule; category fields hold category ids.

    An image *matches* when it contains at least one of ``any_of`` (if
    given), all of ``all_of`` and none of ``none_of``; a rule without
    conditions matches every image. Of the images a rule decides, it keeps
    none (``keep=False``), the ``k``-th, ``2k``-th, ... in dataset order
    (``keep_every=k``), a seeded random ``round(fraction * matches)`` of
    them (``keep_fraction``), or all.
    """
    any_of: Tuple[int, ...] = ()
    all_of: Tuple[int, ...] = ()
    none_of: Tuple[int, ...] = ()
    keep: bool = True
    keep_every: int = 1
    keep_fraction: float = 1.0
    seed: int = 0
    name: str = ''


@dataclass
class DietSelection:
    """Result of :func:`diet_select`.

    Attributes:
        indices (np.ndarray): Sorted kept image indices (the subset).
        decided_by (np.ndarray): ``(N, )`` index of the rule that decided
            each image, ``-1`` for images no rule matched.
        matched (list[int]): Images decided by each rule.
        kept (list[int]): Images kept by each rule.
        default_matched (int): Images no rule matched.
        default_kept (int): Of those, kept by ``default_keep``.
    """
    indices: np.ndarray
    decided_by: np.ndarray
    matched: List[int] = field(default_factory=list)
    kept: List[int] = field(default_factory=list)
    default_matched: int = 0
    default_kept: int = 0


def _names(value, where: str) -> List[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f'{where}: expected a category name or a non-empty list '
                     f'of names, got {value!r}')


def parse_rules(rules: Sequence[dict],
                classes: Sequence[str]) -> List[DietRule]:
    """Validate rule dicts from a config and resolve names to category ids.

    Raises:
        ValueError: Malformed rule (unknown key, bad keep_every / fraction).
        KeyError: A rule names a category that is not in ``classes``.
    """
    if not isinstance(rules, (list, tuple)):
        raise ValueError(f'DietSampler: rules must be a list of dicts, got '
                         f'{type(rules).__name__}: {rules!r}')
    index = {c: i for i, c in enumerate(classes)}
    parsed = []
    for pos, cfg in enumerate(rules):
        where = f'DietSampler rules[{pos}]'
        if not isinstance(cfg, dict):
            raise ValueError(f'{where}: expected a dict, got {cfg!r}')
        unknown = sorted(set(cfg) - set(_RULE_KEYS))
        if unknown:
            raise ValueError(f'{where}: unknown keys {unknown}; allowed '
                             f'keys are {list(_RULE_KEYS)}')
        conds = {}
        for key in _CONDITION_KEYS:
            names = _names(cfg[key], f'{where}.{key}') if key in cfg else []
            missing = [n for n in names if n not in index]
            if missing:
                raise KeyError(
                    f'{where}.{key} names categories {missing} that the '
                    f'dataset does not have; its classes are {tuple(classes)}')
            conds[key] = tuple(index[n] for n in names)
        keep = cfg.get('keep', True)
        keep_every = cfg.get('keep_every', 1)
        keep_fraction = cfg.get('keep_fraction', 1.0)
        if not isinstance(keep, bool):
            raise ValueError(f'{where}: keep must be True/False, got {keep!r}')
        if (isinstance(keep_every, bool)
                or not isinstance(keep_every, (int, np.integer))
                or keep_every < 1):
            raise ValueError(f'{where}: keep_every must be an int >= 1, got '
                             f'{keep_every!r}')
        if not isinstance(keep_fraction, (int, float)) or not (
                0 < keep_fraction <= 1):
            raise ValueError(f'{where}: keep_fraction must be in (0, 1], got '
                             f'{keep_fraction!r}')
        if keep_every > 1 and keep_fraction < 1:
            raise ValueError(f'{where}: use keep_every or keep_fraction, not '
                             f'both (got {keep_every}, {keep_fraction})')
        if not keep and (keep_every > 1 or keep_fraction < 1):
            raise ValueError(f'{where}: keep=False drops every match; '
                             'keep_every / keep_fraction make no sense here')
        parsed.append(
            DietRule(keep=keep, keep_every=int(keep_every),
                     keep_fraction=float(keep_fraction),
                     seed=int(cfg.get('seed', 0)),
                     name=str(cfg.get('name', f'rule{pos + 1}')), **conds))
    return parsed


def _rule_matches(rule: DietRule, has) -> np.ndarray:
    """``has(cat_id) -> (N, ) bool``; returns the images matching ``rule``."""
    match = None

    def _and(a, b):
        return b if a is None else a & b

    if rule.any_of:
        any_hit = has(rule.any_of[0]).copy()
        for c in rule.any_of[1:]:
            any_hit |= has(c)
        match = _and(match, any_hit)
    for c in rule.all_of:
        match = _and(match, has(c))
    for c in rule.none_of:
        match = _and(match, ~has(c))
    return match


def diet_select(info: CategoryInfo, rules: Sequence[DietRule],
                default_keep: bool = False) -> DietSelection:
    """Apply ordered rules; the first rule matching an image decides it.

    Images that no rule matches are kept iff ``default_keep``. ``keep_every``
    counts the matches *of that rule* in dataset order and keeps the
    ``k``-th, ``2k``-th, ...; ``keep_fraction`` keeps
    ``floor(fraction * matches + 0.5)`` of them, chosen with
    ``numpy.random.default_rng(rule.seed)`` (independent of the training
    seed, so the subset is a function of the config and the data only).

    Vectorised: cost is O(entries) per category named in the rules.
    """
    n = info.num_images
    cache: Dict[int, np.ndarray] = {}

    def has(cat_id):
        if cat_id not in cache:
            cache[cat_id] = info.presence(cat_id)
        return cache[cat_id]

    undecided = np.ones(n, dtype=bool)
    keep = np.zeros(n, dtype=bool)
    decided_by = np.full(n, -1, dtype=np.int32)
    sel = DietSelection(indices=np.zeros(0, np.int64), decided_by=decided_by)
    for r, rule in enumerate(rules):
        match = _rule_matches(rule, has)
        hit = undecided.copy() if match is None else (match & undecided)
        undecided &= ~hit
        decided_by[hit] = r
        hit_idx = np.flatnonzero(hit)
        if not rule.keep:
            kept = hit_idx[:0]
        elif rule.keep_every > 1:
            kept = hit_idx[rule.keep_every - 1::rule.keep_every]
        elif rule.keep_fraction < 1:
            k = int(math.floor(rule.keep_fraction * len(hit_idx) + 0.5))
            kept = np.sort(np.random.default_rng(rule.seed).choice(
                hit_idx, size=k, replace=False))
        else:
            kept = hit_idx
        keep[kept] = True
        sel.matched.append(len(hit_idx))
        sel.kept.append(len(kept))
    sel.default_matched = int(undecided.sum())
    if default_keep:
        keep |= undecided
        sel.default_kept = sel.default_matched
    sel.indices = np.flatnonzero(keep).astype(np.int64)
    return sel


def _describe(rule: DietRule, classes: Sequence[str]) -> str:
    parts = []
    for key in _CONDITION_KEYS:
        ids = getattr(rule, key)
        if ids:
            parts.append(f'{key}={[classes[i] for i in ids]}')
    cond = ' '.join(parts) or 'any image'
    if not rule.keep:
        action = 'drop'
    elif rule.keep_every > 1:
        action = f'keep every {rule.keep_every}'
    elif rule.keep_fraction < 1:
        action = f'keep {rule.keep_fraction:g} (seed {rule.seed})'
    else:
        action = 'keep'
    return f'{cond} -> {action}'


@register_module('data_samplers')
class DietSampler(EpochPartsSampler):
    """Sample from a subset chosen by ordered category rules.

    The subset is computed once at construction from the dataset's
    per-image categories (protocol in
    :mod:`mmplugins.datasets.samplers._category_info`: mmdet
    ``get_cat_ids``, per-image class statistics for mmseg, labels for
    classification), logged as a per-class histogram of the full set vs the
    subset, and checked to be identical on every rank. Sampling from the
    subset is :class:`EpochPartsSampler`'s: each epoch a random
    ``1 / epoch_parts`` of it, split disjointly across ranks.

    Example (the reference rule set of the driver-inattention solution)::

        train_dataloader = dict(sampler=dict(
            type='DietSampler',
            rules=[
                dict(any_of=['cigar', 'phone']),
                dict(all_of=['eye_closed', 'mouth_closed']),
                dict(all_of=['eye_closed', 'mouth_opened']),
                dict(any_of=['mouth_opened'], keep_every=3),
            ],
            default_keep=False,
            epoch_parts=2))

    Args:
        dataset (Sized): The dataset (passed by the Runner); needs
            ``metainfo['classes']`` and per-image category information.
        rules (list[dict]): Ordered rules; the first rule an image matches
            decides it. Keys:

            - ``any_of`` / ``all_of`` / ``none_of`` (str | list[str]):
              category names the image must contain at least one of / all
              of / none of. Omitted conditions always hold.
            - ``keep`` (bool): keep (default) or drop the matches.
            - ``keep_every`` (int): keep only the k-th, 2k-th, ... match
              (in dataset order). Default 1.
            - ``keep_fraction`` (float): keep a seeded random
              ``round(fraction * matches)`` of the matches. Default 1.0.
            - ``seed`` (int): seed of ``keep_fraction``. Default 0.
            - ``name`` (str): label in the log. Default ``rule<i>``.
        default_keep (bool): Fate of images no rule matches. Defaults to
            False (drop), the reference's "otherwise drop".
        epoch_parts (int): Each epoch sees ``len(subset) // epoch_parts``
            images. Defaults to 1.
        replacement (bool): See :class:`EpochPartsSampler`. Defaults to
            False.
        shuffle (bool): See :class:`EpochPartsSampler`. Defaults to True.
        infinite (bool): Yield forever (``IterBasedTrainLoop``). Defaults
            to False.
        seed (int, optional): Sampling seed (the Runner passes
            ``randomness.seed``). Does not affect the subset. Defaults to
            None.
        verbose (bool): Log the histogram and per-rule counts. Defaults to
            True.

    Raises:
        KeyError: A rule names a category the dataset does not have.
        ValueError: Malformed rules, empty subset, ``epoch_parts`` < 1 or
            larger than the subset, or no category information.

    Note:
        Pipelines that draw *extra* images themselves (``Mosaic``,
        ``MixUp`` pick random indices of the whole dataset) bypass the
        sampler. mmyolo's mix transforms: wrap the dataset in
        :class:`~mmplugins.datasets.subset_mix_dataset.SubsetMixDataset`,
        to which this sampler publishes the subset (partners then come from
        the diet). mmdet's: use ``CachedMosaic`` / ``CachedMixUp``, whose
        caches are filled from the images the sampler yields.
    """

    def __init__(self,
                 dataset: Sized,
                 rules: Sequence[dict],
                 default_keep: bool = False,
                 epoch_parts: int = 1,
                 replacement: bool = False,
                 shuffle: bool = True,
                 infinite: bool = False,
                 seed: Optional[int] = None,
                 verbose: bool = True) -> None:
        def log(msg):
            if verbose:
                print_log(f'DietSampler: {msg}', logger='current')

        info = category_info_from_dataset(dataset, logger=log)
        self.rules = parse_rules(rules, info.classes)
        self.default_keep = bool(default_keep)
        self.category_info = info
        self.selection = diet_select(info, self.rules, self.default_keep)
        if len(self.selection.indices) == 0:
            raise ValueError(
                'DietSampler: the rules keep no image of the '
                f'{info.num_images} in {type(dataset).__name__} (images '
                f'decided per rule: {self.selection.matched}, kept: '
                f'{self.selection.kept}, unmatched: '
                f'{self.selection.default_matched}, default_keep='
                f'{self.default_keep}); check the rules against the classes '
                f'{info.classes}')
        _check_same_on_all_ranks(self.selection.indices)
        super().__init__(dataset, epoch_parts=epoch_parts,
                         replacement=replacement, shuffle=shuffle,
                         infinite=infinite, seed=seed,
                         indices=self.selection.indices)
        if verbose:
            print_log(self.summary(), logger='current')

    def report(self) -> dict:
        """Counts of the full set vs the subset (JSON-serialisable)."""
        info, sel = self.category_info, self.selection
        keep_mask = np.zeros(info.num_images, dtype=bool)
        keep_mask[sel.indices] = True
        return dict(
            classes=list(info.classes),
            unit=info.unit,
            source=info.source,
            num_images=info.num_images,
            subset_size=int(len(sel.indices)),
            epoch_parts=self.epoch_parts,
            epoch_size=self.epoch_size,
            full=info.histogram().tolist(),
            diet=info.histogram(keep_mask).tolist(),
            rules=[
                dict(rule=_describe(rule, info.classes), matched=m, kept=k)
                for rule, m, k in zip(self.rules, sel.matched, sel.kept)
            ] + [
                dict(rule='no rule matched -> ' +
                     ('keep' if self.default_keep else 'drop'),
                     matched=sel.default_matched, kept=sel.default_kept)
            ])

    def summary(self) -> str:
        """The log text: per-rule counts and the per-class histogram."""
        rep = self.report()
        lines = [f'DietSampler kept {rep["subset_size"]} of '
                 f'{rep["num_images"]} images ({rep["source"]}); '
                 f'epoch_parts={self.epoch_parts} -> {rep["epoch_size"]} '
                 'images per epoch']
        for i, r in enumerate(rep['rules']):
            lines.append(f'  {i + 1}. {r["rule"]}: matched {r["matched"]}, '
                         f'kept {r["kept"]}')
        lines.append(format_histogram(
            rep['classes'], [('full', rep['full']), ('diet', rep['diet'])],
            rep['unit']))
        return '\n'.join(lines)


def _check_same_on_all_ranks(indices: np.ndarray) -> None:
    """The subset is deterministic, but ranks reading different annotation
    files would silently train on different subsets: compare a digest."""
    from mmengine.dist import get_dist_info
    _, world_size = get_dist_info()
    if world_size == 1:
        return
    digest = hashlib.sha1(np.ascontiguousarray(indices).tobytes()).hexdigest()
    obj = [digest]
    broadcast_object_list(obj, src=0)
    if obj[0] != digest:
        raise RuntimeError('DietSampler: the diet subset differs between '
                           'ranks (different annotation files or category '
                           'order?); rank 0 has digest '
                           f'{obj[0]}, this rank {digest}')
