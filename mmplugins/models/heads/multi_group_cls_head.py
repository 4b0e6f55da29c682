"""Multi-group classification head: one joint label = several small labels.

A joint label over ``K = k_0 * k_1 * ... * k_{G-1}`` classes is read as a
mixed-radix number whose digits are the group labels, the first group being
the most significant digit. The mask competition's ``mask * 6 + gender * 3 +
age`` is exactly this with radices ``(3, 2, 3)``. Predicting the digits with
one small softmax each (shared features, separate losses) instead of one
``K``-way softmax is what the winning teams did: every group sees every
sample, so rare joint cells (old men with an incorrect mask) borrow strength
from the frequent ones.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import ModuleDict

from mmplugins.registry import register_module

try:
    from mmpretrain.models.heads import ClsHead
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
except ImportError:  # mmpretrain is optional: the head is then not registered
    from mmengine.model import BaseModule as ClsHead
    from mmengine.registry import MODELS
    DataSample = None

# ---------------------------------------------------------------------------
# reference semantics: mixed-radix encode / decode
# ---------------------------------------------------------------------------


def _check_radices(radices: Sequence[int]) -> Tuple[int, ...]:
    radices = tuple(int(r) for r in radices)
    if len(radices) == 0 or any(r < 1 for r in radices):
        raise ValueError('radices must be a non-empty sequence of positive '
                         f'group sizes, but got {radices}')
    return radices


def encode_groups(digits: Sequence, radices: Sequence[int]):
    """Joint label from group labels (first group = most significant).

    Args:
        digits (Sequence[int | array | Tensor]): One label per group, scalars
            or equally shaped arrays/tensors.
        radices (Sequence[int]): Number of classes of every group.

    Returns:
        The joint label(s), same type as the digits.

    Example:
        >>> encode_groups((2, 1, 0), (3, 2, 3))   # mask*6 + gender*3 + age
        15
    """
    radices = _check_radices(radices)
    if len(digits) != len(radices):
        raise ValueError(f'got {len(digits)} group labels for '
                         f'{len(radices)} groups {radices}')
    joint = 0
    for g, (d, r) in enumerate(zip(digits, radices)):
        arr = np.asarray(d.cpu() if torch.is_tensor(d) else d)
        if arr.size and (arr.min() < 0 or arr.max() >= r):
            raise ValueError(f'group {g} label must be in [0, {r}), '
                             f'but got {d}')
        joint = joint * r + d
    return joint


def decode_groups(label, radices: Sequence[int]) -> tuple:
    """Group labels from a joint label; inverse of :func:`encode_groups`.

    Args:
        label (int | array | Tensor): Joint label(s) in ``[0, prod(radices))``.
        radices (Sequence[int]): Number of classes of every group.

    Returns:
        tuple: one label (same type as ``label``) per group.
    """
    radices = _check_radices(radices)
    total = int(np.prod(radices))
    arr = np.asarray(label.cpu() if torch.is_tensor(label) else label)
    if arr.size and (arr.min() < 0 or arr.max() >= total):
        raise ValueError(f'joint label must be in [0, {total}) for groups '
                         f'{radices}, but got {label}')
    digits = []
    for r in reversed(radices):
        digits.append(label % r)
        label = label // r
    return tuple(reversed(digits))


def joint_log_probs(group_logits: Sequence[torch.Tensor],
                    radices: Sequence[int]) -> torch.Tensor:
    """Log-probabilities of every joint class, groups taken as independent.

    ``log p(joint=c) = sum_g log softmax(logits_g)[digit_g(c)]``. The joint
    distribution sums to one and its argmax is the tuple of the group argmaxes.

    Args:
        group_logits (Sequence[Tensor]): ``(N, k_g)`` logits per group.
        radices (Sequence[int]): ``k_g`` per group.

    Returns:
        Tensor: ``(N, prod(radices))`` joint log-probabilities.
    """
    radices = _check_radices(radices)
    codes = torch.arange(int(np.prod(radices)),
                         device=group_logits[0].device)
    digits = decode_groups(codes, radices)
    out = 0
    for logits, d in zip(group_logits, digits):
        out = out + F.log_softmax(logits.float(), dim=1)[:, d]
    return out


# ---------------------------------------------------------------------------
# registry class
# ---------------------------------------------------------------------------


@register_module('models', toolboxes=('mmpretrain', ))
class MultiGroupClsHead(ClsHead):
    """Shared neck + one linear sub-head and one loss per label group.

    The dataset keeps its ordinary joint ``gt_label``; the head splits it into
    group labels (:func:`decode_groups`), so stock mmpretrain datasets,
    metrics, TTA and ``DumpResults`` keep working and the head is a drop-in
    replacement for a ``LinearClsHead(num_classes=prod(groups))``.

    Args:
        groups (dict[str, int]): Ordered ``{group name: number of classes}``;
            the first group is the most significant digit of the joint label.
        in_channels (int): Channels of the input feature (after the neck,
            e.g. ``GlobalAveragePooling``).
        hidden_channels (int, optional): Width of the shared neck
            (``Linear -> BatchNorm1d -> ReLU``) in front of the sub-heads.
            ``None`` (default): the sub-heads read the feature directly.
        dropout (float): Dropout before the sub-heads. Defaults to 0.
        loss (dict): Loss config used by every group that has no entry in
            ``group_losses``. Defaults to ``CrossEntropyLoss``.
        group_losses (dict[str, dict], optional): Per-group loss configs, e.g.
            ``dict(age=dict(type='SoftmaxFocalLoss', gamma=2.))``; a value
            may also be a list of configs whose losses are summed (e.g.
            focal + soft-F1). Class weights go into the loss configs.
        group_loss_weights (dict[str, float], optional): Multiplier of each
            group's loss. Defaults to 1 for every group.
        init_cfg (dict, optional): Defaults to a ``Normal(std=0.01)`` init of
            the linear layers, like ``LinearClsHead``.

    Loss keys are ``loss_<group>`` (plus ``loss_<group>_<i>`` for a list).

    Predictions: ``pred_score`` is the joint ``prod(groups)``-way distribution
    (product of the group softmaxes), ``pred_label`` its argmax, and every
    group gets ``<group>_score`` / ``<group>_label`` fields.
    """

    def __init__(self,
                 groups: Dict[str, int],
                 in_channels: int,
                 hidden_channels: Optional[int] = None,
                 dropout: float = 0.,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 group_losses: Optional[Dict[str, Union[dict, list]]] = None,
                 group_loss_weights: Optional[Dict[str, float]] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Linear', std=0.01)):
        if not isinstance(groups, dict) or not groups:
            raise ValueError('groups must be a non-empty dict {name: '
                             f'num_classes}}, but got {groups!r}')
        radices = _check_radices(groups.values())
        if in_channels <= 0:
            raise ValueError(f'in_channels must be > 0, but got {in_channels}')
        if hidden_channels is not None and hidden_channels <= 0:
            raise ValueError('hidden_channels must be None or > 0, but got '
                             f'{hidden_channels}')
        if not 0. <= dropout < 1.:
            raise ValueError(f'dropout must be in [0, 1), but got {dropout}')
        for name, table in (('group_losses', group_losses),
                            ('group_loss_weights', group_loss_weights)):
            unknown = set(table or {}) - set(groups)
            if unknown:
                raise KeyError(f'{name} names unknown groups '
                               f'{sorted(unknown)}; groups are {list(groups)}')
        # ClsHead builds ``self.loss_module`` from ``loss``: it stays the
        # default of the groups without an override.
        super().__init__(loss=loss, init_cfg=init_cfg)
        self.groups = dict(groups)
        self.radices = radices
        self.num_classes = int(np.prod(radices))
        self.in_channels = in_channels

        if hidden_channels is None:
            self.neck = nn.Identity()
            head_in = in_channels
        else:
            self.neck = nn.Sequential(
                nn.Linear(in_channels, hidden_channels),
                nn.BatchNorm1d(hidden_channels), nn.ReLU(inplace=True))
            head_in = hidden_channels
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fcs = ModuleDict(
            {name: nn.Linear(head_in, k)
             for name, k in self.groups.items()})

        self.group_losses = ModuleDict()
        for name in self.groups:
            cfg = (group_losses or {}).get(name, None)
            if cfg is None:
                self.group_losses[name] = nn.ModuleList([self.loss_module])
            else:
                cfgs = cfg if isinstance(cfg, (list, tuple)) else [cfg]
                self.group_losses[name] = nn.ModuleList(
                    c if isinstance(c, nn.Module) else MODELS.build(c)
                    for c in cfgs)
        self.group_loss_weights = {
            name: float((group_loss_weights or {}).get(name, 1.))
            for name in self.groups
        }

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The shared neck applied to the last stage's feature."""
        return self.neck(feats[-1])

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Concatenated group logits, ``(N, sum(groups))``."""
        x = self.dropout(self.pre_logits(feats))
        return torch.cat([fc(x) for fc in self.fcs.values()], dim=1)

    def split_logits(self, logits: torch.Tensor) -> List[torch.Tensor]:
        """Split the output of :meth:`forward` into per-group logits."""
        return list(torch.split(logits, list(self.radices), dim=1))

    def _get_loss(self, cls_score: torch.Tensor,
                  data_samples: List['DataSample'], **kwargs) -> dict:
        if 'gt_score' in data_samples[0]:
            raise ValueError(
                'MultiGroupClsHead needs hard joint labels (gt_label) but the '
                'data samples carry soft gt_score: batch augments such as '
                'Mixup/CutMix are not supported by this head')
        target = torch.cat([ds.gt_label for ds in data_samples])
        digits = decode_groups(target, self.radices)
        losses = dict()
        for (name, logits), d in zip(
                zip(self.groups, self.split_logits(cls_score)), digits):
            weight = self.group_loss_weights[name]
            modules = self.group_losses[name]
            for i, module in enumerate(modules):
                key = f'loss_{name}' if len(modules) == 1 else \
                    f'loss_{name}_{i}'
                losses[key] = weight * module(
                    logits, d, avg_factor=logits.size(0), **kwargs)
        return losses

    def _get_predictions(self, cls_score, data_samples):
        group_logits = self.split_logits(cls_score)
        joint = joint_log_probs(group_logits, self.radices).exp()
        labels = joint.argmax(dim=1, keepdim=True).detach()
        group_scores = [F.softmax(g.float(), dim=1) for g in group_logits]
        if data_samples is None:
            data_samples = [None] * joint.size(0)
        out = []
        for i, ds in enumerate(data_samples):
            ds = DataSample() if ds is None else ds
            ds.set_pred_score(joint[i]).set_pred_label(labels[i])
            for name, scores in zip(self.groups, group_scores):
                ds.set_field(scores[i], f'{name}_score')
                ds.set_field(scores[i].argmax().view(1), f'{name}_label')
            out.append(ds)
        return out
