"""Cross-entropy against label-smoothed targets.

Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016: the target
is ``(1 - smoothing) * one_hot + smoothing / C``. Registered as
``LabelSmoothingLoss``; mmpretrain's ``LabelSmoothLoss`` (another name) also
covers multi-label and batch-augment targets, this one adds class weights and
nothing else, so the value is easy to check by hand.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmplugins.registry import register_module

from ._reduce import as_class_weight, check_inputs, check_reduction, \
    reduce_loss


def per_class_ls_loss(log_p: torch.Tensor,
                      smoothing: float) -> torch.Tensor:
    """``(N, C)``: entry ``k`` is the loss the sample would have with hard
    label ``k``: ``-(1 - s) log p_k - s / C sum_j log p_j``."""
    return -(1. - smoothing) * log_p - smoothing / log_p.size(1) * \
        log_p.sum(dim=1, keepdim=True)


def label_smoothing_loss(cls_score: torch.Tensor,
                         label: torch.Tensor,
                         smoothing: float = 0.1) -> torch.Tensor:
    """Per-sample ``-sum_k q_k log softmax(x)_k`` with smoothed ``q``.

    Args:
        cls_score (Tensor): ``(N, C)`` logits.
        label (Tensor): ``(N,)`` class indices, or ``(N, C)`` soft targets
            ``t`` (Mixup/CutMix): ``sum_k t_k * loss(hard label k)``, i.e.
            the target ``(1 - smoothing) * t + smoothing / C``.
        smoothing (float): Mass spread uniformly over all ``C`` classes.

    Returns:
        Tensor: ``(N,)`` losses; equals
        ``F.cross_entropy(x, y, label_smoothing=smoothing, reduction='none')``.
    """
    log_p = F.log_softmax(cls_score.float(), dim=1)
    num_classes = cls_score.size(1)
    if label.ndim == 2:
        return (label.to(log_p) * per_class_ls_loss(log_p, smoothing)).sum(1)
    target = torch.full_like(log_p, smoothing / num_classes)
    target.scatter_(1, label.long().view(-1, 1),
                    1. - smoothing + smoothing / num_classes)
    return -(target * log_p).sum(dim=1)


@register_module('models', toolboxes=('mmpretrain', ))
class LabelSmoothingLoss(nn.Module):
    """Label-smoothing cross-entropy.

    Args:
        smoothing (float): Smoothing mass in ``[0, 1)``; 0 is plain
            cross-entropy. Defaults to 0.1.
        class_weight (list[float], optional): Per-class weights applied to
            each sample's loss as ``class_weight[label]`` (for a soft target
            ``t``: ``sum_k t_k class_weight[k] loss(hard label k)``, so a
            Mixup of labels a and b gives ``lam * loss(a) + (1 - lam) *
            loss(b)``). Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to
            ``'mean'`` (weighted sum / ``avg_factor``, see
            :class:`SoftmaxFocalLoss`).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    #: takes (N, C) soft targets
    soft_target = True

    def __init__(self,
                 smoothing: float = 0.1,
                 class_weight: Union[None, Sequence[float]] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        if not 0. <= smoothing < 1.:
            raise ValueError(f'smoothing must be in [0, 1), but got '
                             f'{smoothing}')
        self.smoothing = float(smoothing)
        self.class_weight = as_class_weight(class_weight)
        self.reduction = check_reduction(reduction)
        self.loss_weight = float(loss_weight)

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        """Loss of ``(N, C)`` logits against ``(N,)`` labels or ``(N, C)``
        soft targets."""
        check_inputs(cls_score, label, self.class_weight,
                     'LabelSmoothingLoss')
        reduction = check_reduction(reduction_override or self.reduction)
        cw = self.class_weight
        if label.ndim == 2 and cw is not None and cw.ndim == 1:
            log_p = F.log_softmax(cls_score.float(), dim=1)
            loss = (label.to(log_p) * cw.to(log_p) *
                    per_class_ls_loss(log_p, self.smoothing)).sum(1)
        else:
            loss = label_smoothing_loss(cls_score, label, self.smoothing)
            if cw is not None:
                cw = cw.to(loss)
                loss = loss * (cw[label.long()] if cw.ndim == 1 else cw)
        return self.loss_weight * reduce_loss(loss, weight, reduction,
                                              avg_factor)
