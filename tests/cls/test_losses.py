"""Each loss against a value computed by hand (2 samples, 3 classes)."""
import math

import pytest
import torch

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
