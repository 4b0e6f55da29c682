"""mIoU over class subsets next to mmseg's ``IoUMetric`` (Synthia's mIoU16 /
mIoU13).

SYNTHIA labels 16 of Cityscapes' 19 classes, so Synthia->Cityscapes is
reported as the mean IoU over those 16 ("mIoU16") and over 13 of them
("mIoU13": without wall, fence, pole). The reference evaluates the 19-class
mIoU and asks users to rescale it by hand (``mIoU16 = mIoU19 * 19 / 16``,
exact only when the three missing classes have IoU 0); this metric reports
the subsets directly from the per-class IoU.
"""
from typing import Dict, Sequence, Union

import numpy as np
from mmseg.evaluation import IoUMetric

from mmplugins.registry import register_module

#: named presets of ``subsets``
SUBSET_PRESETS = {}


def _synthia_preset():
    from mmplugins.datasets.synthia import (SYNTHIA_13_CLASSES,
                                            SYNTHIA_16_CLASSES)
    return dict(mIoU16=list(SYNTHIA_16_CLASSES),
                mIoU13=list(SYNTHIA_13_CLASSES))


SUBSET_PRESETS['synthia'] = _synthia_preset


def subset_mean_iou(per_class_iou: np.ndarray, class_names: Sequence[str],
                    subset: Sequence[Union[str, int]],
                    where: str = 'subset') -> float:
    """Mean (NaN-skipping, as mmseg's mIoU) of ``per_class_iou`` over
    ``subset`` (class names or indices); a fraction in [0, 1].

    Raises:
        ValueError: a class of ``subset`` is not in ``class_names``.
    """
    names = list(class_names)
    idx = []
    for c in subset:
        if isinstance(c, str):
            if c not in names:
                raise ValueError(f'{where}: class {c!r} is not one of the '
                                 f"dataset's classes {names}")
            idx.append(names.index(c))
        else:
            if not 0 <= int(c) < len(names):
                raise ValueError(f'{where}: class index {c} outside '
                                 f'0..{len(names) - 1}')
            idx.append(int(c))
    vals = np.asarray(per_class_iou, dtype=np.float64)[idx]
    if np.all(np.isnan(vals)):
        return float('nan')
    return float(np.nanmean(vals))


@register_module('metrics', toolboxes=('mmseg', ))
class SubsetIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` plus the mean IoU over named class subsets.

    Args:
        subsets (dict | str): ``{metric name: [class names or indices]}``,
            e.g. ``dict(mIoU16=[...], mIoU13=[...])``, or a preset name:
            ``'synthia'`` = ``mIoU16`` over SYNTHIA's 16 classes and
            ``mIoU13`` over the papers' 13 (without wall, fence, pole).
        **kwargs: :class:`mmseg.evaluation.IoUMetric` arguments
            (``iou_metrics``, ``ignore_index``, ``nan_to_num``, ...).

    Each subset value is the mean of the per-class IoU (the same values the
    per-class table prints; NaN classes -- absent from both prediction and
    labels -- skipped, as mmseg's mIoU) over the subset, in percent rounded
    to 2 decimals, logged as ``<prefix>/<name>`` next to ``mIoU``.

    Example::

        val_evaluator = dict(type='SubsetIoUMetric', iou_metrics=['mIoU'],
                             subsets='synthia')
    """

    def __init__(self, subsets: Union[str, Dict[str, Sequence]] = 'synthia',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(subsets, str):
            if subsets not in SUBSET_PRESETS:
                raise ValueError(
                    f'SubsetIoUMetric: unknown subsets preset {subsets!r}; '
                    f'expected one of {sorted(SUBSET_PRESETS)} or a dict '
                    '{name: [classes]}')
            subsets = SUBSET_PRESETS[subsets]()
        if not isinstance(subsets, dict) or not subsets:
            raise ValueError('SubsetIoUMetric: subsets must be a non-empty '
                             f'dict {{name: [classes]}}, but got {subsets!r}')
        for name, classes in subsets.items():
            if not isinstance(name, str) or isinstance(classes, str) or \
                    not isinstance(classes, (list, tuple)) or not classes:
                raise ValueError(
                    'SubsetIoUMetric: each subset must be a name -> non-'
                    f'empty list of classes, but got {name!r}: {classes!r}')
        if 'mIoU' in subsets:
            raise ValueError("SubsetIoUMetric: 'mIoU' is IoUMetric's own "
                             'key; name the subset differently')
        self.subsets = {k: list(v) for k, v in subsets.items()}

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        areas = tuple(zip(*results))
        intersect = sum(areas[0])
        union = sum(areas[1])
        iou = (intersect / union).cpu().numpy() if hasattr(
            intersect, 'cpu') else np.asarray(intersect / union)
        if self.nan_to_num is not None:  # as IoUMetric's per-class values
            iou = np.nan_to_num(iou, nan=self.nan_to_num)
        names = self.dataset_meta['classes']
        for name, classes in self.subsets.items():
            value = subset_mean_iou(iou, names, classes,
                                    where=f'SubsetIoUMetric.subsets.{name}')
            metrics[name] = float(np.round(value * 100, 2))
        return metrics
