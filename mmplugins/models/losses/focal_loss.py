"""Softmax (multi-class) focal loss, the one the mask-competition teams used.

Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, in its
multi-class form: ``-alpha_y * (1 - p_y) ** gamma * log p_y`` with ``p`` the
softmax of the logits. mmpretrain's own ``FocalLoss`` is the *sigmoid*
(one-vs-rest) variant and owns that registry name, so this one is registered
as ``SoftmaxFocalLoss``.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmplugins.registry import register_module

from ._reduce import as_class_weight, check_inputs, check_reduction, \
    reduce_loss


def softmax_focal_loss(cls_score: torch.Tensor,
                       label: torch.Tensor,
                       gamma: float = 2.0,
                       alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sample softmax focal loss (no reduction).

    Args:
        cls_score (Tensor): ``(N, C)`` logits.
        label (Tensor): ``(N,)`` class indices, or ``(N, C)`` soft targets
            ``q`` (Mixup/CutMix): then the loss is
            ``-sum_k alpha_k q_k (1 - p_k) ** gamma log p_k``, which is the
            hard-label loss for a one-hot ``q``.
        gamma (float): Focusing parameter; 0 gives cross-entropy.
        alpha (Tensor, optional): Scalar or ``(C,)`` class weights applied as
            ``alpha[label]``.

    Returns:
        Tensor: ``(N,)`` losses.
    """
    log_p = F.log_softmax(cls_score.float(), dim=1)
    if label.ndim == 2:
        q = label.to(log_p)
        per_class = -((1. - log_p.exp()).clamp(min=0.)**gamma) * log_p * q
        if alpha is not None:
            alpha = alpha.to(log_p)
            per_class = per_class * (alpha if alpha.ndim == 1 else alpha)
        return per_class.sum(dim=1)
    log_pt = log_p.gather(1, label.long().view(-1, 1)).squeeze(1)
    loss = -((1. - log_pt.exp()).clamp(min=0.)**gamma) * log_pt
    if alpha is not None:
        alpha = alpha.to(loss)
        loss = loss * (alpha[label.long()] if alpha.ndim == 1 else alpha)
    return loss


@register_module('models', toolboxes=('mmpretrain', ))
class SoftmaxFocalLoss(nn.Module):
    """Multi-class focal loss over a softmax.

    Args:
        gamma (float): Focusing parameter (>= 0); ``gamma=0`` with no
            ``alpha`` is plain cross-entropy. Defaults to 2.0.
        alpha (float | list[float], optional): Class weights, a scalar or one
            value per class, multiplied into each sample's loss as
            ``alpha[label]``. Defaults to None (all 1).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to
            ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.

    Note:
        ``mean`` divides the weighted sum by ``avg_factor`` (the batch size
        when called by an mmpretrain head), like mmpretrain's
        ``CrossEntropyLoss`` - *not* by the sum of the class weights as
        ``torch.nn.functional.nll_loss(weight=...)`` does.
    """

    #: takes (N, C) soft targets (see :func:`softmax_focal_loss`)
    soft_target = True

    def __init__(self,
                 gamma: float = 2.0,
                 alpha: Union[None, float, Sequence[float]] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        if gamma < 0:
            raise ValueError(f'gamma must be >= 0, but got {gamma}')
        self.gamma = float(gamma)
        self.alpha = as_class_weight(alpha, 'alpha')
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
        soft targets.

        ``weight`` is an optional ``(N,)`` per-sample weight.
        """
        check_inputs(cls_score, label, self.alpha, 'SoftmaxFocalLoss')
        reduction = check_reduction(reduction_override or self.reduction)
        loss = softmax_focal_loss(cls_score, label, self.gamma, self.alpha)
        return self.loss_weight * reduce_loss(loss, weight, reduction,
                                              avg_factor)
