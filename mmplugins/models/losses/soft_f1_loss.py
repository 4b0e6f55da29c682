"""Soft (differentiable) macro-F1 loss.

The competition is scored by macro-F1; the teams optimised it directly by
replacing the hard counts with softmax probabilities over the batch:
``tp_k = sum_i p_ik y_ik``, ``fp_k = sum_i p_ik (1 - y_ik)``,
``fn_k = sum_i (1 - p_ik) y_ik``, ``F1_k = 2 tp_k / (2 tp_k + fp_k + fn_k)``
and ``loss = 1 - mean_k F1_k``. It is a *batch* loss: it has no per-sample
value, so it is usually added to a cross-entropy/focal loss.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmplugins.registry import register_module

from ._reduce import as_class_weight, check_inputs, soft_or_onehot


def soft_f1_per_class(cls_score: torch.Tensor,
                      label: torch.Tensor,
                      weight: Optional[torch.Tensor] = None,
                      eps: float = 1e-7) -> torch.Tensor:
    """Soft F1 of every class over the batch.

    Args:
        cls_score (Tensor): ``(N, C)`` logits.
        label (Tensor): ``(N,)`` class indices, or ``(N, C)`` soft targets
            used as the soft truth ``y`` (Mixup/CutMix).
        weight (Tensor, optional): ``(N,)`` per-sample weights of the counts.
        eps (float): Keeps classes absent from batch and prediction finite.

    Returns:
        Tensor: ``(C,)`` soft F1 values in ``[0, 1]``.
    """
    p = F.softmax(cls_score.float(), dim=1)
    y = soft_or_onehot(label, cls_score.size(1), p)
    w = torch.ones_like(p[:, :1]) if weight is None else \
        weight.to(p).view(-1, 1)
    tp = (p * y * w).sum(0)
    fp = (p * w).sum(0) - tp
    fn = (y * w).sum(0) - tp
    return 2 * tp / (2 * tp + fp + fn + eps)


@register_module('models', toolboxes=('mmpretrain', ))
class SoftF1Loss(nn.Module):
    """``1 - soft macro-F1`` over the batch.

    Args:
        class_weight (list[float], optional): Weights of the per-class F1 in
            the (weighted) mean. Defaults to None (plain macro average).
        eps (float): Denominator epsilon. Defaults to 1e-7.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.

    Note:
        The loss is already a batch statistic, so ``avg_factor`` and
        ``reduction_override`` are accepted (head compatibility) and ignored.
    """

    #: takes (N, C) soft targets as the soft truth
    soft_target = True

    def __init__(self,
                 class_weight: Union[None, Sequence[float]] = None,
                 eps: float = 1e-7,
                 loss_weight: float = 1.0):
        super().__init__()
        if eps <= 0:
            raise ValueError(f'eps must be > 0, but got {eps}')
        self.class_weight = as_class_weight(class_weight)
        if self.class_weight is not None and (self.class_weight.ndim != 1
                                              or self.class_weight.sum() <= 0):
            raise ValueError('class_weight must be a per-class list with a '
                             f'positive sum, but got {class_weight!r}')
        self.eps = float(eps)
        self.loss_weight = float(loss_weight)

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        """Loss of ``(N, C)`` logits against ``(N,)`` labels or ``(N, C)``
        soft targets; ``weight`` weights each sample's counts."""
        check_inputs(cls_score, label, self.class_weight, 'SoftF1Loss')
        f1 = soft_f1_per_class(cls_score, label, weight, self.eps)
        if self.class_weight is None:
            macro = f1.mean()
        else:
            cw = self.class_weight.to(f1)
            macro = (f1 * cw).sum() / cw.sum()
        return self.loss_weight * (1. - macro)
