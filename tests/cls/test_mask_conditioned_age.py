"""Mask-conditioned age sub-heads and soft (Mixup / CutMix) targets on the
grouped heads. Expected values are computed by hand (plain math) from the
logits the test writes into the layers."""
import math

import pytest
import torch

from mmplugins.models.heads.mask_label import decode, encode

mmpretrain = pytest.importorskip('mmpretrain')

# two samples; feats are one-hot rows, so sample i's logits are column i of
# the layer weight (bias 0)
MASK_LOGITS = [[0.1, 0.3, 2.0],    # sample 0: predicted "not wear" (2)
               [1.5, 0.2, -0.4]]   # sample 1: predicted "wear" (0)
GENDER_LOGITS = [[0.5, -0.5], [-1.0, 1.0]]
# AGE_LOGITS[i][m] = sample i's logits of the age sub-head of mask state m
AGE_LOGITS = [[[2.0, 0.0, 0.0], [0.0, 1.0, 3.0], [0.0, 2.5, 0.5]],
              [[0.2, 0.1, 1.7], [1.0, 0.0, 0.0], [0.3, 0.3, 0.3]]]
# ground truth: sample 0 incorrect/male/>=60, sample 1 wear/female/<30
GT = [encode(1, 0, 2), encode(0, 1, 0)]


def _softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def _ce(xs, y):
    return -math.log(_softmax(xs)[y])


def _head(condition_test='predicted', **kw):
    from mmpretrain.registry import MODELS
    head = MODELS.build(dict(type='MaskLabelHead', in_channels=2,
                             conditioned=dict(age='mask'),
                             condition_test=condition_test, **kw))
    with torch.no_grad():
        head.fcs['mask'].weight.copy_(torch.tensor(MASK_LOGITS).T)
        head.fcs['gender'].weight.copy_(torch.tensor(GENDER_LOGITS).T)
        # row m * 3 + a of the stacked Linear = sub-head m, age class a
        head.fcs['age'].weight.copy_(
            torch.tensor(AGE_LOGITS).reshape(2, 9).T)
        for fc in head.fcs.values():
            fc.bias.zero_()
    return head.eval()


FEATS = (torch.eye(2), )


def _samples(labels):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_label(int(v)) for v in labels]


def test_training_uses_the_ground_truth_mask_sub_head():
    head = _head()
    losses = head.loss(FEATS, _samples(GT))
    # sample 0: GT mask 1 -> sub-head 1, age 2; sample 1: mask 0, age 0
    want = (_ce(AGE_LOGITS[0][1], 2) + _ce(AGE_LOGITS[1][0], 0)) / 2
    assert float(losses['loss_age']) == pytest.approx(want, rel=1e-6)
    want_mask = (_ce(MASK_LOGITS[0], 1) + _ce(MASK_LOGITS[1], 0)) / 2
    assert float(losses['loss_mask']) == pytest.approx(want_mask, rel=1e-6)
    # the predicted mask (2 for sample 0) is NOT what training reads
    wrong = (_ce(AGE_LOGITS[0][2], 2) + _ce(AGE_LOGITS[1][0], 0)) / 2
    assert abs(float(losses['loss_age']) - wrong) > 0.1


@pytest.mark.parametrize('mode', ['predicted', 'mixture'])
def test_test_time_age_scores_by_hand(mode):
    preds = _head(mode).predict(FEATS)
    for i, ds in enumerate(preds):
        pm = _softmax(MASK_LOGITS[i])
        if mode == 'predicted':
            m = max(range(3), key=lambda k: pm[k])
            want = _softmax(AGE_LOGITS[i][m])
        else:
            subs = [_softmax(AGE_LOGITS[i][m]) for m in range(3)]
            want = [sum(pm[m] * subs[m][a] for m in range(3))
                    for a in range(3)]
        assert ds.age_score.tolist() == pytest.approx(want, rel=1e-5)
        # the joint 18-way score is the product of the group scores
        pg = _softmax(GENDER_LOGITS[i])
        joint = [pm[m] * pg[g] * want[a]
                 for m, g, a in (decode(c) for c in range(18))]
        assert ds.pred_score.tolist() == pytest.approx(joint, rel=1e-5)
        assert sum(joint) == pytest.approx(1.0)
        # decode of the 18-way label = the group labels
        label = int(ds.pred_label)
        assert label == max(range(18), key=lambda c: joint[c])
        assert decode(label) == (int(ds.mask_label), int(ds.gender_label),
                                 int(ds.age_label))


def test_predicted_and_mixture_differ_where_expected():
    # sample 0: predicted mask 2 -> sub-head 2 says age 1 (30-59); the
    # mixture leans on sub-head 2 too but sub-head 1 pulls towards >=60
    p = _head('predicted').predict(FEATS)[0]
    x = _head('mixture').predict(FEATS)[0]
    assert int(p.age_label) == 1
    assert float(x.age_score[2]) > float(p.age_score[2]) + 0.05


def test_conditioned_head_shapes_and_bad_args():
    from mmpretrain.registry import MODELS
    head = _head()
    assert head(FEATS).shape == (2, 3 + 2 + 9)
    # without conditioning: unchanged layout
    plain = MODELS.build(dict(type='MaskLabelHead', in_channels=2))
    assert plain(FEATS).shape == (2, 8)
    with pytest.raises(KeyError, match='unknown groups'):
        MODELS.build(dict(type='MaskLabelHead', in_channels=2,
                          conditioned=dict(age='colour')))
    with pytest.raises(ValueError, match="cannot be conditioned on 'age'"):
        MODELS.build(dict(type='MaskLabelHead', in_channels=2,
                          conditioned=dict(age='age')))
    with pytest.raises(ValueError, match="condition_test must be one of"):
        MODELS.build(dict(type='MaskLabelHead', in_channels=2,
                          conditioned=dict(age='mask'),
                          condition_test='vote'))


# ---------------------------------------------------------------- Mixup/CutMix
def _mixed_batch(augment, seed):
    """Three samples with the images e_0, e_1, e_2 (one channel lit each)
    through mmpretrain's real ClsDataPreprocessor batch augment; returns the
    data samples, their original labels and, read back from the mixed
    images, (lam_i, partner_i) of every sample."""
    import numpy as np
    from mmpretrain.models.utils import ClsDataPreprocessor
    from mmpretrain.structures import DataSample
    labels = [encode(1, 0, 2), encode(0, 1, 0), encode(2, 1, 1)]
    pre = ClsDataPreprocessor(
        num_classes=18, batch_augments=dict(augments=[augment]))
    imgs = torch.zeros(3, 3, 16, 16, dtype=torch.uint8)
    for i in range(3):
        imgs[i, i] = 1
    np.random.seed(seed)
    torch.manual_seed(seed)
    data = pre(dict(inputs=list(imgs),
                    data_samples=[DataSample().set_gt_label(v)
                                  for v in labels]), training=True)
    mixed = data['inputs']
    mix = []
    for i in range(3):
        share = mixed[i].mean(dim=(1, 2))  # fraction of each source image
        partner = [j for j in range(3) if j != i and share[j] > 0]
        assert len(partner) <= 1
        mix.append((float(share[i]), partner[0] if partner else i))
    return data['data_samples'], labels, mix


@pytest.mark.parametrize('augment,seed', [
    (dict(type='Mixup', alpha=1.0), 3),
    (dict(type='CutMix', alpha=1.0), 5),
])
def test_batch_augment_group_targets(augment, seed):
    samples, labels, mix = _mixed_batch(augment, seed)
    assert any(0 < lam < 1 for lam, _ in mix), 'nothing was mixed'
    head = _head()
    hard, targets, _ = head.group_targets(samples)
    assert not hard
    for i, (lam, j) in enumerate(mix):
        a, b = decode(labels[i]), decode(labels[j])
        for g, k in enumerate((3, 2, 3)):
            want = [lam * (c == a[g]) + (1 - lam) * (c == b[g])
                    for c in range(k)]
            assert targets[g][i].tolist() == pytest.approx(want, abs=1e-5)
            assert float(targets[g][i].sum()) == pytest.approx(1.0)


@pytest.mark.parametrize('age_loss', [
    dict(type='CrossEntropyLoss'),
    dict(type='SoftmaxFocalLoss', gamma=2.0, alpha=[1., 2., 3.]),
    dict(type='LabelSmoothingLoss', smoothing=0.1, class_weight=[1., 2., 1.]),
])
def test_soft_loss_is_the_lam_mix_of_the_hard_losses(age_loss):
    """A loss linear in its target (CE, focal, label smoothing; conditioned
    age included) gives lam * loss(labels a) + (1 - lam) * loss(labels b)."""
    samples, labels, mix = _mixed_batch(dict(type='Mixup', alpha=1.0), 3)
    lam = [lam for i, (lam, j) in enumerate(mix) if j != i][0]
    partner = [j for _, j in mix]
    head = _head(group_losses=dict(age=age_loss, mask=age_loss
                                   if age_loss['type'] != 'SoftmaxFocalLoss'
                                   else None))
    feats = (torch.randn(3, 2, generator=torch.Generator().manual_seed(0)), )
    soft = head.loss(feats, samples)
    la = head.loss(feats, _samples(labels))
    lb = head.loss(feats, _samples([labels[j] for j in partner]))
    for key in soft:
        assert float(soft[key]) == pytest.approx(
            lam * float(la[key]) + (1 - lam) * float(lb[key]), rel=1e-5), key


def test_soft_f1_takes_soft_targets_and_bad_loss_is_named():
    samples, _, _ = _mixed_batch(dict(type='CutMix', alpha=1.0), 5)
    head = _head(group_losses=dict(age=[dict(type='SoftmaxFocalLoss'),
                                        dict(type='SoftF1Loss')]))
    losses = head.loss((torch.randn(3, 2), ), samples)
    assert set(losses) == {'loss_mask', 'loss_gender', 'loss_age_0',
                           'loss_age_1'}
    assert all(torch.isfinite(v) for v in losses.values())
    bad = _head(group_losses=dict(gender=dict(type='FocalLoss')))
    with pytest.raises(TypeError, match="group 'gender' loss FocalLoss "
                       'cannot take soft targets'):
        bad.loss((torch.randn(3, 2), ), samples)
