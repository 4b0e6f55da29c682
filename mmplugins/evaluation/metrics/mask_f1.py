"""Macro-F1 of the joint label and of each label group (mask competition).

The competition ranked by ``sklearn.metrics.f1_score(average='macro')`` over
the 18 joint classes: the mean F1 of the classes present in the ground truth
or the predictions. The per-group F1 (mask / gender / age) tells which
sub-problem costs the points (it is almost always age).
"""
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mmplugins.models.heads.multi_group_cls_head import decode_groups
from mmplugins.registry import register_module


def confusion_matrix(gt: np.ndarray, pred: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """``cm[t, p]`` = number of samples of true class t predicted as p."""
    gt, pred = np.asarray(gt, np.int64), np.asarray(pred, np.int64)
    for name, arr in (('gt', gt), ('pred', pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f'{name} labels must be in [0, {num_classes}), '
                             f'but got range [{arr.min()}, {arr.max()}]')
    return np.bincount(
        gt * num_classes + pred, minlength=num_classes**2).reshape(
            num_classes, num_classes)


def macro_f1(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> float:
    """sklearn's ``f1_score(average='macro')``: classes absent from both the
    ground truth and the predictions are left out of the mean; a class that
    is present but never hit has F1 0."""
    cm = confusion_matrix(gt, pred, num_classes).astype(np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    if not present.any():
        return 0.
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return float(f1.mean())


def accuracy(gt: np.ndarray, pred: np.ndarray) -> float:
    gt, pred = np.asarray(gt), np.asarray(pred)
    return float((gt == pred).mean()) if gt.size else 0.


@register_module('metrics', toolboxes=('mmpretrain', ))
class MaskF1Metric(BaseMetric):
    """Joint and per-group macro-F1 and accuracy.

    The prediction is the argmax of ``pred_score`` (``pred_label`` when no
    score is stored): mmpretrain's ``AverageClsScoreTTA`` averages the scores
    but keeps the first view's ``pred_label``, so the score is the one to
    trust after TTA.

    Args:
        groups (dict[str, int]): Ordered ``{group: num_classes}`` of the
            joint label (mixed radix, first group most significant).
            Defaults to the mask competition's ``mask=3, gender=2, age=3``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to ``'mask'``.

    Keys: ``joint_f1`` (the competition score, in %), ``joint_acc``,
    ``<group>_f1`` and ``<group>_acc`` for every group.
    """
    default_prefix: Optional[str] = 'mask'

    def __init__(self,
                 groups: Optional[Dict[str, int]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        groups = dict(mask=3, gender=2, age=3) if groups is None else groups
        if not isinstance(groups, dict) or not groups or any(
                int(k) < 1 for k in groups.values()):
            raise ValueError('groups must be a non-empty dict {name: '
                             f'num_classes >= 1}}, but got {groups!r}')
        self.groups = {k: int(v) for k, v in groups.items()}
        self.num_classes = int(np.prod(list(self.groups.values())))

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            if 'gt_label' not in ds:
                raise KeyError(
                    f'MaskF1Metric: sample {ds.get("img_path", "?")} has no '
                    'gt_label (a prediction-only test set? use '
                    "test_evaluator=dict(type='DumpResults', ...))")
            if 'pred_score' in ds:
                pred = int(np.asarray(ds['pred_score'].cpu()).argmax())
            else:
                pred = int(ds['pred_label'].reshape(-1)[0])
            self.results.append((int(ds['gt_label'].reshape(-1)[0]), pred))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        arr = np.asarray(results, dtype=np.int64).reshape(-1, 2)
        gt, pred = arr[:, 0], arr[:, 1]
        metrics = dict(
            joint_f1=100 * macro_f1(gt, pred, self.num_classes),
            joint_acc=100 * accuracy(gt, pred))
        radices = tuple(self.groups.values())
        for (name, k), g, p in zip(self.groups.items(),
                                   decode_groups(gt, radices),
                                   decode_groups(pred, radices)):
            metrics[f'{name}_f1'] = 100 * macro_f1(g, p, k)
            metrics[f'{name}_acc'] = 100 * accuracy(g, p)
        return metrics
