"""Shared argument checks and reduction of the classification losses."""
from typing import Optional, Sequence, Union

import torch

REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, but got '
                         f'{reduction!r}')
    return reduction


def as_class_weight(value: Union[None, float, Sequence[float]],
                    name: str = 'class_weight') -> Optional[torch.Tensor]:
    """None, a scalar or a per-class list -> None / 0-d / 1-d float tensor."""
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32)
    if t.ndim > 1 or (t < 0).any() or not torch.isfinite(t).all():
        raise ValueError(f'{name} must be a non-negative float or a list of '
                         f'per-class floats, but got {value!r}')
    return t


def check_inputs(cls_score: torch.Tensor, label: torch.Tensor,
                 class_weight: Optional[torch.Tensor], loss_name: str):
    if cls_score.ndim != 2:
        raise ValueError(f'{loss_name}: cls_score must be (N, C), but got '
                         f'shape {tuple(cls_score.shape)}')
    soft = label.ndim == 2 and tuple(label.shape) == tuple(cls_score.shape)
    if not soft and (label.ndim != 1 or label.numel() != cls_score.size(0)):
        raise ValueError(f'{loss_name}: label must be (N,) hard class '
                         f'indices or (N, C) soft targets with (N, C)='
                         f'{tuple(cls_score.shape)}, but got shape '
                         f'{tuple(label.shape)}')
    if class_weight is not None and class_weight.ndim == 1 and \
            class_weight.numel() != cls_score.size(1):
        raise ValueError(f'{loss_name}: class_weight has '
                         f'{class_weight.numel()} entries for '
                         f'{cls_score.size(1)} classes')


def soft_or_onehot(label: torch.Tensor, num_classes: int,
                   like: torch.Tensor) -> torch.Tensor:
    """``(N, C)`` float targets: a soft label as is, hard indices one-hot."""
    if label.ndim == 2:
        return label.to(like)
    return torch.nn.functional.one_hot(label.long(), num_classes).to(like)


def reduce_loss(loss: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                reduction: str = 'mean',
                avg_factor: Optional[float] = None) -> torch.Tensor:
    """Element-wise weight, then ``none`` / ``sum`` / ``mean``.

    ``mean`` divides by ``avg_factor`` when given (mmpretrain's convention:
    the head passes the batch size), else by the number of elements.
    """
    if weight is not None:
        loss = loss * weight.to(loss)
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if avg_factor is None:
        return loss.mean()
    return loss.sum() / avg_factor
