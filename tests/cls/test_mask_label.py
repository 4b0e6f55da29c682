"""Joint mask label code and the multi-group / mask heads."""
import numpy as np
import pytest
import torch

from mmplugins.models.heads.mask_label import (MASK_RADICES, age_to_label,
                                               class_names, decode, encode)
from mmplugins.models.heads.multi_group_cls_head import (decode_groups,
                                                         encode_groups,
                                                         joint_log_probs)

mmpretrain = pytest.importorskip('mmpretrain')


def test_encode_decode_round_trip_all_18():
    seen = set()
    for mask in range(3):
        for gender in range(2):
            for age in range(3):
                label = encode(mask, gender, age)
                assert label == mask * 6 + gender * 3 + age
                assert decode(label) == (mask, gender, age)
                seen.add(label)
    assert seen == set(range(18))
    # vectorised, numpy and torch
    labels = np.arange(18)
    assert (encode(*decode(labels)) == labels).all()
    t = torch.arange(18)
    assert torch.equal(encode(*decode(t)), t)
    assert class_names()[encode(1, 1, 2)] == 'incorrect/female/>=60'


def test_age_classes_and_bad_codes():
    assert [age_to_label(a) for a in (18, 29, 30, 59, 60, 80)] == \
        [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match='group 2 label must be in'):
        encode(0, 0, 3)
    with pytest.raises(ValueError, match=r'joint label must be in \[0, 18\)'):
        decode(18)
    with pytest.raises(ValueError, match='radices'):
        encode_groups((0, ), ())
    assert encode_groups((1, 4), (2, 5)) == 9
    assert decode_groups(9, (2, 5)) == (1, 4)


def test_joint_log_probs_is_product_of_group_softmaxes():
    torch.manual_seed(0)
    logits = [torch.randn(4, k) for k in MASK_RADICES]
    joint = joint_log_probs(logits, MASK_RADICES).exp()
    assert joint.shape == (4, 18)
    assert torch.allclose(joint.sum(1), torch.ones(4))
    p = [torch.softmax(x, 1) for x in logits]
    m, g, a = decode(7)
    assert torch.allclose(joint[:, 7], p[0][:, m] * p[1][:, g] * p[2][:, a])
    # argmax of the joint = tuple of group argmaxes
    best = encode(*(x.argmax(1) for x in p))
    assert torch.equal(joint.argmax(1), best)


def _samples(labels):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_label(int(v)) for v in labels]


def test_mask_label_head_loss_and_predict():
    from mmpretrain.registry import MODELS
    head = MODELS.build(
        dict(type='MaskLabelHead', in_channels=8, hidden_channels=6,
             group_losses=dict(age=[
                 dict(type='SoftmaxFocalLoss', gamma=2.),
                 dict(type='SoftF1Loss')
             ]),
             group_loss_weights=dict(age=2.0)))
    head.init_weights()
    torch.manual_seed(0)
    feats = (torch.randn(5, 8), )
    labels = [0, 7, 17, 11, 3]
    losses = head.loss(feats, _samples(labels))
    assert set(losses) == {'loss_mask', 'loss_gender', 'loss_age_0',
                           'loss_age_1'}
    # eval mode: BatchNorm of the shared neck uses fixed statistics
    head.eval()
    losses = head.loss(feats, _samples(labels))
    logits = head.split_logits(head(feats))
    # mask loss is plain CE of the mask logits against label // 6
    ce = torch.nn.functional.cross_entropy(logits[0],
                                           torch.tensor(labels) // 6)
    assert torch.allclose(losses['loss_mask'], ce, atol=1e-6)
    # the age losses carry the group weight 2
    from mmplugins.models.losses.soft_f1_loss import SoftF1Loss
    f1 = SoftF1Loss()(logits[2], torch.tensor(labels) % 3)
    assert torch.allclose(losses['loss_age_1'], 2 * f1, atol=1e-6)
    preds = head.predict(feats)
    assert len(preds) == 5
    for ds in preds:
        assert ds.pred_score.shape == (18, )
        assert abs(float(ds.pred_score.sum()) - 1) < 1e-5
        assert int(ds.pred_label) == int(ds.pred_score.argmax())
        assert decode(int(ds.pred_label)) == (int(ds.mask_label),
                                              int(ds.gender_label),
                                              int(ds.age_label))
        assert ds.age_score.shape == (3, )


def test_multi_group_head_generic_groups_and_bad_args():
    from mmpretrain.registry import MODELS
    head = MODELS.build(dict(type='MultiGroupClsHead',
                             groups=dict(kind=5, colour=2), in_channels=4))
    out = head.predict((torch.randn(3, 4), ))
    assert out[0].pred_score.shape == (10, )
    with pytest.raises(KeyError, match=r"unknown groups \['age'\]"):
        MODELS.build(dict(type='MultiGroupClsHead', groups=dict(a=2),
                          in_channels=4, group_losses=dict(age=dict(
                              type='CrossEntropyLoss'))))
    with pytest.raises(ValueError, match='but got 0'):
        MODELS.build(dict(type='MaskLabelHead', in_channels=0))
