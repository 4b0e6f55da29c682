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


#: how a conditioned group is predicted (see ``MultiGroupClsHead``)
CONDITION_TEST_MODES = ('predicted', 'mixture')
#: losses that take soft (N, C) targets
SOFT_TARGET_LOSSES = ('SoftmaxFocalLoss', 'LabelSmoothingLoss', 'SoftF1Loss',
                      'CrossEntropyLoss (softmax)', 'LabelSmoothLoss')


def takes_soft_target(module: nn.Module) -> bool:
    """Whether a loss module accepts ``(N, C)`` probability targets.

    Ours say so with a ``soft_target = True`` attribute; of mmpretrain's,
    the softmax ``CrossEntropyLoss`` (torch's cross-entropy takes class
    probabilities; ``use_soft=True`` is the same formula) and
    ``LabelSmoothLoss`` do. Everything else (sigmoid CE, mmpretrain's
    sigmoid ``FocalLoss``, ...) is treated as hard-label only.
    """
    if getattr(module, 'soft_target', False) is True:
        return True
    name = type(module).__name__
    if name == 'CrossEntropyLoss' and type(module).__module__.startswith(
            'mmpretrain'):
        return not getattr(module, 'use_sigmoid', False)
    return name == 'LabelSmoothLoss' and type(module).__module__.startswith(
        'mmpretrain')


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
        conditioned (dict[str, str], optional): ``{group: condition group}``,
            e.g. ``dict(age='mask')``: the group gets one linear sub-head per
            class of the condition group (the mask-status-specific age
            models of the competition write-ups). Training: each sample's
            loss is taken on the sub-head of its *ground-truth* condition
            class. A condition group cannot itself be conditioned.
            Defaults to None (every group has one sub-head).
        condition_test (str): How a conditioned group is predicted:
            ``'predicted'`` (default) uses the sub-head of the *predicted*
            (argmax) condition class; ``'mixture'`` averages the sub-heads'
            softmaxes weighted by the condition group's probabilities.
        init_cfg (dict, optional): Defaults to a ``Normal(std=0.01)`` init of
            the linear layers, like ``LinearClsHead``.

    Loss keys are ``loss_<group>`` (plus ``loss_<group>_<i>`` for a list).

    Predictions: ``pred_score`` is the joint ``prod(groups)``-way distribution
    (product of the group scores), ``pred_label`` its argmax (= the tuple of
    the group argmaxes), and every group gets ``<group>_score`` /
    ``<group>_label`` fields.

    Note:
        Soft targets: when the data samples carry ``gt_score`` (mmpretrain's
        batch augments ``Mixup`` / ``CutMix`` set it, a mix of two joint
        one-hots), every group's target is the marginal of that joint score
        over the other groups, so each group gets ``lam * onehot(a) +
        (1 - lam) * onehot(b)`` with the same ``lam``. A conditioned group's
        sub-head of condition class ``m`` is trained on the target
        ``p(group | m)`` with sample weight ``p(m)`` (for hard labels: the
        ground-truth sub-head only). Losses that take soft targets:
        ``SoftmaxFocalLoss``, ``LabelSmoothingLoss``, ``SoftF1Loss`` and
        mmpretrain's softmax ``CrossEntropyLoss`` / ``LabelSmoothLoss``; any
        other loss is a ``TypeError`` naming the group and the loss at the
        first soft batch.
    """

    def __init__(self,
                 groups: Dict[str, int],
                 in_channels: int,
                 hidden_channels: Optional[int] = None,
                 dropout: float = 0.,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 group_losses: Optional[Dict[str, Union[dict, list]]] = None,
                 group_loss_weights: Optional[Dict[str, float]] = None,
                 conditioned: Optional[Dict[str, str]] = None,
                 condition_test: str = 'predicted',
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
        conditioned = dict(conditioned or {})
        for name, cond in conditioned.items():
            if name not in groups or cond not in groups:
                raise KeyError(
                    f'conditioned={conditioned!r} names unknown groups; '
                    f'groups are {list(groups)}')
            if cond == name or cond in conditioned:
                raise ValueError(
                    f'conditioned={conditioned!r}: group {name!r} cannot be '
                    f'conditioned on {cond!r} (itself, or a conditioned '
                    'group)')
        if condition_test not in CONDITION_TEST_MODES:
            raise ValueError(f'condition_test must be one of '
                             f'{CONDITION_TEST_MODES}, but got '
                             f'{condition_test!r}')
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
        self.conditioned = conditioned
        self.condition_test = condition_test
        # a conditioned group's sub-heads are stacked in one Linear:
        # output (N, n_cond * k), row-major by condition class
        self.fcs = ModuleDict({
            name: nn.Linear(head_in, k * self._num_sub_heads(name))
            for name, k in self.groups.items()
        })

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

    def _num_sub_heads(self, name: str) -> int:
        cond = self.conditioned.get(name)
        return 1 if cond is None else self.groups[cond]

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The shared neck applied to the last stage's feature."""
        return self.neck(feats[-1])

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Concatenated group logits, ``(N, sum_g k_g * sub_heads_g)``
        (``sum(groups)`` without ``conditioned``)."""
        x = self.dropout(self.pre_logits(feats))
        return torch.cat([fc(x) for fc in self.fcs.values()], dim=1)

    def split_logits(self, logits: torch.Tensor) -> List[torch.Tensor]:
        """Split the output of :meth:`forward` into per-group logits:
        ``(N, k_g)``, or ``(N, n_cond, k_g)`` for a conditioned group."""
        sizes = [k * self._num_sub_heads(n) for n, k in self.groups.items()]
        out = []
        for (name, k), x in zip(self.groups.items(),
                                torch.split(logits, sizes, dim=1)):
            out.append(x if name not in self.conditioned else
                       x.reshape(x.size(0), self._num_sub_heads(name), k))
        return out

    def group_targets(self, data_samples: List['DataSample']):
        """Per-group targets of a batch: ``(hard, targets)``.

        ``hard=True``: ``targets`` are ``(N,)`` class indices per group
        (digits of ``gt_label``). ``hard=False`` (``gt_score`` present):
        ``targets`` are ``(N, k_g)`` marginals of the joint soft score, and
        ``joint`` the ``(N, *radices)`` score itself (returned third).
        """
        if 'gt_score' in data_samples[0]:
            score = torch.stack([ds.gt_score for ds in data_samples]).float()
            if score.ndim != 2 or score.size(1) != self.num_classes:
                raise ValueError(
                    f'{type(self).__name__}: gt_score must be (N, '
                    f'{self.num_classes}) joint scores, but got shape '
                    f'{tuple(score.shape)} (set the data_preprocessor\'s '
                    f'num_classes={self.num_classes})')
            joint = score.view(score.size(0), *self.radices)
            marg = []
            for g in range(len(self.radices)):
                dims = [d + 1 for d in range(len(self.radices)) if d != g]
                marg.append(joint.sum(dim=dims) if dims else joint)
            return False, marg, joint
        target = torch.cat([ds.gt_label for ds in data_samples])
        return True, list(decode_groups(target, self.radices)), None

    def _group_inputs(self, name, logits, hard, targets, joint):
        """``(logits, target, weight)`` of one group's loss.

        A conditioned group: hard labels pick each sample's ground-truth
        sub-head; soft targets expand every (sample, condition class) pair
        with ``p(cond) > 0`` into a row with target ``p(group | cond)`` and
        sample weight ``p(cond)``.
        """
        names = list(self.groups)
        g = names.index(name)
        if name not in self.conditioned:
            return logits, targets[g], None
        c = names.index(self.conditioned[name])
        n = logits.size(0)
        if hard:
            return logits[torch.arange(n), targets[c].long()], targets[g], \
                None
        # (N, k_c, k_g): joint marginal of the condition and the group
        dims = [d + 1 for d in range(len(self.radices)) if d not in (c, g)]
        pair = joint.sum(dim=dims) if dims else joint
        if c > g:
            pair = pair.transpose(1, 2)
        w = pair.sum(dim=2)
        keep = w > 1e-12
        cond_target = pair[keep] / w[keep].unsqueeze(1)
        return logits[keep], cond_target, w[keep]

    def _get_loss(self, cls_score: torch.Tensor,
                  data_samples: List['DataSample'], **kwargs) -> dict:
        hard, targets, joint = self.group_targets(data_samples)
        losses = dict()
        n = cls_score.size(0)
        for name, logits in zip(self.groups, self.split_logits(cls_score)):
            x, target, sample_w = self._group_inputs(name, logits, hard,
                                                     targets, joint)
            weight = self.group_loss_weights[name]
            modules = self.group_losses[name]
            for i, module in enumerate(modules):
                if not hard and not takes_soft_target(module):
                    raise TypeError(
                        f'{type(self).__name__}: group {name!r} loss '
                        f'{type(module).__name__} cannot take soft targets '
                        '(gt_score from a batch augment such as Mixup / '
                        f'CutMix); use one of {SOFT_TARGET_LOSSES} for this '
                        'group, or remove batch_augments')
                key = f'loss_{name}' if len(modules) == 1 else \
                    f'loss_{name}_{i}'
                extra = {} if sample_w is None else dict(weight=sample_w)
                losses[key] = weight * module(
                    x, target, avg_factor=n, **extra, **kwargs)
        return losses

    def group_scores(self, cls_score: torch.Tensor) -> List[torch.Tensor]:
        """``(N, k_g)`` probabilities of every group (a conditioned group
        per ``condition_test``)."""
        group_logits = self.split_logits(cls_score)
        scores = {
            name: F.softmax(x.float(), dim=-1)
            for name, x in zip(self.groups, group_logits)
        }
        for name, cond in self.conditioned.items():
            sub = scores[name]  # (N, k_c, k_g)
            if self.condition_test == 'predicted':
                pick = scores[cond].argmax(dim=1)
                scores[name] = sub[torch.arange(sub.size(0)), pick]
            else:
                scores[name] = (scores[cond].unsqueeze(2) * sub).sum(dim=1)
        return [scores[name] for name in self.groups]

    def _get_predictions(self, cls_score, data_samples):
        if self.conditioned:
            group_scores = self.group_scores(cls_score)
            codes = torch.arange(self.num_classes, device=cls_score.device)
            joint = 1.
            for s, d in zip(group_scores,
                            decode_groups(codes, self.radices)):
                joint = joint * s[:, d]
        else:
            group_logits = self.split_logits(cls_score)
            joint = joint_log_probs(group_logits, self.radices).exp()
            group_scores = [F.softmax(g.float(), dim=1) for g in group_logits]
        labels = joint.argmax(dim=1, keepdim=True).detach()
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
