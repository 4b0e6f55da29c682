"""Mask-wearing labels (boostcamp mask competition) and their multi-label head.

18 classes = mask {wear, incorrect, not wear} x gender {male, female} x age
{<30, 30-59, >=60}; ``label = mask * 6 + gender * 3 + age``.
:func:`encode` / :func:`decode` are the reference for that code and
:class:`MaskLabelHead` predicts it with three sub-heads (mask 3, gender 2,
age 3) on a shared neck.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

from mmplugins.registry import register_module

from .multi_group_cls_head import (MultiGroupClsHead, decode_groups,
                                   encode_groups)

#: Ordered label groups of the joint code (most significant first).
MASK_GROUPS: Dict[str, int] = dict(mask=3, gender=2, age=3)
MASK_RADICES: Tuple[int, ...] = tuple(MASK_GROUPS.values())
NUM_MASK_CLASSES = 18

MASK_NAMES = ('wear', 'incorrect', 'not_wear')
GENDER_NAMES = ('male', 'female')
AGE_NAMES = ('<30', '30-59', '>=60')

#: Age boundaries of the competition: <30, 30..59, >=60.
AGE_BOUNDS = (30, 60)


def encode(mask, gender, age):
    """Joint 18-class label ``mask * 6 + gender * 3 + age``.

    Args:
        mask (int | array | Tensor): 0 wear, 1 incorrect, 2 not wear.
        gender (int | array | Tensor): 0 male, 1 female.
        age (int | array | Tensor): age *class*: 0 <30, 1 30-59, 2 >=60
            (use :func:`age_to_label` for years).
    """
    return encode_groups((mask, gender, age), MASK_RADICES)


def decode(label) -> tuple:
    """``(mask, gender, age)`` classes of joint label(s); inverse of
    :func:`encode`."""
    return decode_groups(label, MASK_RADICES)


def check_age_bins(age_bins) -> Tuple[int, int]:
    """``(young_below, old_from)`` as two increasing positive ints."""
    try:
        lo, hi = (int(b) for b in age_bins)
        ok = [lo, hi] == [float(b) for b in age_bins] and 0 < lo < hi
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError('age_bins must be two increasing positive integers '
                         f'(young_below, old_from), e.g. (30, 60), but got '
                         f'{age_bins!r}')
    return lo, hi


def age_to_label(age: Union[int, float],
                 age_bins: Sequence[int] = AGE_BOUNDS) -> int:
    """Age class of an age in years: 0 (<30), 1 (30-59), 2 (>=60).

    ``age_bins=(30, 58)`` moves the old class to >= 58 (the teams' relabel
    of the ages just under 60, which the data's age distribution cuts off).
    """
    if age < 0:
        raise ValueError(f'age must be >= 0, but got {age}')
    lo, hi = check_age_bins(age_bins)
    return int(age >= lo) + int(age >= hi)


def class_names() -> Tuple[str, ...]:
    """Names of the 18 joint classes, e.g. ``'incorrect/female/30-59'``."""
    return tuple(f'{MASK_NAMES[m]}/{GENDER_NAMES[g]}/{AGE_NAMES[a]}'
                 for m, g, a in (decode(i) for i in range(NUM_MASK_CLASSES)))


@register_module('models', toolboxes=('mmpretrain', ))
class MaskLabelHead(MultiGroupClsHead):
    """Multi-label mask head: mask (3) / gender (2) / age (3) sub-heads.

    A :class:`MultiGroupClsHead` with the competition's groups fixed, so the
    per-group losses are addressed by name::

        head=dict(
            type='MaskLabelHead', in_channels=576, hidden_channels=256,
            group_losses=dict(
                age=dict(type='SoftmaxFocalLoss', gamma=2.0)),
            group_loss_weights=dict(mask=1.0, gender=1.0, age=1.5))

    It reads the joint ``gt_label`` (``mask * 6 + gender * 3 + age``) and
    predicts the joint 18-way ``pred_score`` / ``pred_label`` plus
    ``mask_score``, ``gender_score``, ``age_score`` (and ``*_label``).

    Args:
        in_channels (int): Input feature channels.
        hidden_channels (int, optional): Shared neck width; ``None`` = no
            neck layer. Defaults to None.
        dropout (float): Dropout before the sub-heads. Defaults to 0.
        loss (dict): Default loss of every group. Defaults to
            ``CrossEntropyLoss``.
        group_losses (dict, optional): Per-group loss configs (keys among
            ``mask``, ``gender``, ``age``).
        group_loss_weights (dict, optional): Per-group loss multipliers.
        conditioned (dict, optional): ``dict(age='mask')`` gives age three
            sub-heads, one per mask state (the teams' mask-status-specific
            age models): trained on the ground-truth mask's sub-head, and at
            test chosen by ``condition_test``. Defaults to None.
        condition_test (str): ``'predicted'`` (the sub-head of the predicted
            mask state; default) or ``'mixture'`` (the sub-heads' age
            softmaxes weighted by the mask probabilities). The output is the
            same 18-way joint label either way.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: Optional[int] = None,
                 dropout: float = 0.,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 group_losses: Optional[dict] = None,
                 group_loss_weights: Optional[dict] = None,
                 conditioned: Optional[dict] = None,
                 condition_test: str = 'predicted',
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Linear', std=0.01)):
        super().__init__(
            groups=MASK_GROUPS,
            in_channels=in_channels,
            hidden_channels=hidden_channels,
            dropout=dropout,
            loss=loss,
            group_losses=group_losses,
            group_loss_weights=group_loss_weights,
            conditioned=conditioned,
            condition_test=condition_test,
            init_cfg=init_cfg)
