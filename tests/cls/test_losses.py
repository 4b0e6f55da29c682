"""Each loss against a value computed by hand (2 samples, 3 classes)."""
import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmpretrain')

from mmplugins.models.losses.focal_loss import SoftmaxFocalLoss  # noqa: E402
from mmplugins.models.losses.label_smoothing_loss import \
    LabelSmoothingLoss  # noqa: E402
from mmplugins.models.losses.soft_f1_loss import SoftF1Loss  # noqa: E402

# logits chosen so the softmax is easy: exp(log(p)) = p
P = torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
LOGITS = P.log()
LABEL = torch.tensor([0, 1])


def test_softmax_focal_loss_hand_value():
    # -(1 - p_t)^2 log p_t : p_t = 0.7 and 0.25
    l0 = -(0.3**2) * math.log(0.7)
    l1 = -(0.75**2) * math.log(0.25)
    loss = SoftmaxFocalLoss(gamma=2.0)(LOGITS, LABEL)
    assert loss.item() == pytest.approx((l0 + l1) / 2, rel=1e-5)
    # class weights alpha[label]; mean divides by N (avg_factor), not sum(w)
    loss = SoftmaxFocalLoss(gamma=2.0, alpha=[0.5, 2.0, 1.0])(
        LOGITS, LABEL, avg_factor=2)
    assert loss.item() == pytest.approx((0.5 * l0 + 2.0 * l1) / 2, rel=1e-5)
    # gamma 0 = cross-entropy
    ce = torch.nn.functional.cross_entropy(LOGITS, LABEL)
    assert SoftmaxFocalLoss(gamma=0.)(LOGITS, LABEL).item() == \
        pytest.approx(ce.item(), rel=1e-6)
    per = SoftmaxFocalLoss(gamma=2.0, reduction='none')(LOGITS, LABEL)
    assert per.tolist() == pytest.approx([l0, l1], rel=1e-5)


def test_label_smoothing_loss_hand_value():
    eps = 0.3  # q = 0.8 on the target, 0.1 elsewhere (0.3 / 3)
    l0 = -(0.8 * math.log(0.7) + 0.1 * math.log(0.2) + 0.1 * math.log(0.1))
    l1 = -(0.1 * math.log(0.25) + 0.8 * math.log(0.25) +
           0.1 * math.log(0.5))
    loss = LabelSmoothingLoss(smoothing=eps)(LOGITS, LABEL)
    assert loss.item() == pytest.approx((l0 + l1) / 2, rel=1e-5)
    ref = torch.nn.functional.cross_entropy(LOGITS, LABEL,
                                            label_smoothing=eps)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    loss = LabelSmoothingLoss(smoothing=eps, class_weight=[1., 3., 1.],
                              reduction='sum')(LOGITS, LABEL)
    assert loss.item() == pytest.approx(l0 + 3 * l1, rel=1e-5)


def test_soft_f1_loss_hand_value():
    # class 0: tp .7, fp .25, fn .3 ; class 1: tp .25, fp .2, fn .75
    # class 2: tp 0,  fp .6,  fn 0
    f1 = [2 * .7 / (1.4 + .25 + .3), 2 * .25 / (.5 + .2 + .75), 0.]
    loss = SoftF1Loss(eps=1e-12)(LOGITS, LABEL)
    assert loss.item() == pytest.approx(1 - sum(f1) / 3, rel=1e-5)
    loss = SoftF1Loss(class_weight=[1., 1., 0.], eps=1e-12)(LOGITS, LABEL)
    assert loss.item() == pytest.approx(1 - (f1[0] + f1[1]) / 2, rel=1e-5)
    # differentiable
    x = LOGITS.clone().requires_grad_()
    SoftF1Loss()(x, LABEL).backward()
    assert x.grad.abs().sum() > 0


def test_loss_argument_errors():
    with pytest.raises(ValueError, match='gamma must be >= 0, but got -1'):
        SoftmaxFocalLoss(gamma=-1)
    with pytest.raises(ValueError, match='smoothing must be in'):
        LabelSmoothingLoss(smoothing=1.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        SoftmaxFocalLoss(reduction='avg')
    with pytest.raises(ValueError, match='class_weight has 2 entries'):
        LabelSmoothingLoss(class_weight=[1, 2])(LOGITS, LABEL)
    with pytest.raises(ValueError, match=r'label must be \(N,\)'):
        SoftF1Loss()(LOGITS, LABEL.view(2, 1))


def test_losses_registered_for_mmpretrain():
    from mmpretrain.registry import MODELS
    for name in ('SoftmaxFocalLoss', 'LabelSmoothingLoss', 'SoftF1Loss'):
        assert MODELS.get(name) is not None
    # mmpretrain's own (sigmoid) FocalLoss is left untouched
    assert MODELS.get('FocalLoss').__module__.startswith('mmpretrain')


def test_soft_targets():
    """(N, C) soft targets (Mixup/CutMix): a one-hot target gives the hard
    loss; label smoothing = torch's cross-entropy on probabilities; focal
    with gamma=0 = soft cross-entropy; soft-F1 reads y = the target."""
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    y = torch.tensor([0, 2, 1, 2])
    onehot = F.one_hot(y, 3).float()
    q = torch.softmax(torch.randn(4, 3), 1)
    for loss in (SoftmaxFocalLoss(gamma=2., alpha=[1., 2., .5]),
                 LabelSmoothingLoss(0.2, class_weight=[1., 3., 2.]),
                 SoftF1Loss()):
        assert loss.soft_target is True
        assert torch.allclose(loss(x, onehot), loss(x, y), atol=1e-6)
    ls = LabelSmoothingLoss(0.2)(x, q)
    assert torch.allclose(ls, F.cross_entropy(x, q, label_smoothing=0.2),
                          atol=1e-6)
    ce = -(q * F.log_softmax(x, 1)).sum(1).mean()
    assert torch.allclose(SoftmaxFocalLoss(gamma=0.)(x, q), ce, atol=1e-6)
    # by hand for one sample: -sum_k q_k (1 - p_k)^2 log p_k
    p = torch.softmax(x, 1)
    hand = -sum(float(q[0, k] * (1 - p[0, k])**2 * torch.log(p[0, k]))
                for k in range(3))
    got = SoftmaxFocalLoss(gamma=2., reduction='none')(x, q)[0]
    assert float(got) == pytest.approx(hand, rel=1e-5)
    tp = (p * q).sum(0)
    f1 = 2 * tp / (2 * tp + (p.sum(0) - tp) + (q.sum(0) - tp) + 1e-7)
    assert torch.allclose(SoftF1Loss()(x, q), 1 - f1.mean(), atol=1e-6)
    with pytest.raises(ValueError, match=r'\(N, C\) soft targets'):
        SoftF1Loss()(x, q[:, :2])
