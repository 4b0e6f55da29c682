"""HRDA (HRDAEncoderDecoder + HRDAHead) against the reference's definitions.

Expected values are derived here in plain torch from HRDA's equations
(lhoyer/HRDA ``hrda_head.py`` / ``hrda_encoder_decoder.py``), not by
running our implementation twice.
"""
import copy
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

import mmplugins  # noqa: F401
from mmplugins.models.decode_heads.hrda_head import hrda_fuse
from mmplugins.models.segmentors.hrda import random_crop_box

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'uda'))
from _tiny import student_cfg  # noqa: E402

C = 5


def hrda_cfg(hr_crop=(32, 32), classwise=True, fixed=None, **kw):
    cfg = student_cfg(num_classes=C)
    cfg['decode_head'].update(
        type='HRDAHead', single_scale_head='DAFormerHead', embed_dims=16,
        attention_embed_dim=8, hr_loss_weight=0.1,
        attention_classwise=classwise, fixed_attention=fixed,
        dropout_ratio=0.0)
    cfg['backbone']['drop_path_rate'] = 0.0
    cfg.update(type='HRDAEncoderDecoder', scales=[1, 0.5],
               hr_crop_size=hr_crop, crop_coord_divisible=8)
    cfg.update(kw)
    return cfg


def build(cfg):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        m = MODELS.build(copy.deepcopy(cfg))
    m.init_weights()
    return m


def up2(x):
    return F.interpolate(x, scale_factor=2, mode='bilinear',
                         align_corners=False)


# ------------------------------------------------------------------ fusion
def _fusion_inputs():
    g = torch.Generator().manual_seed(0)
    lr = torch.randn(2, C, 8, 8, generator=g)   # context: 64px image at 0.5
    hr = torch.randn(2, C, 8, 8, generator=g)   # detail: 32x32 crop, os 4
    att = torch.rand(2, C, 8, 8, generator=g)
    box = (16, 48, 24, 56)  # full-resolution pixels, divisible by 8
    return lr, hr, att, box


def test_fusion_equals_reference_equation():
    lr, hr, att, box = _fusion_inputs()
    out = hrda_fuse(lr, hr, att, lr_scale=0.5, hr_box=box)
    # by hand: attention zero outside the crop (box / 8 on the context's
    # output grid), detail pasted at box / 4 on the fused grid
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 3:7] = 1
    a = att * mask
    pasted = torch.zeros(2, C, 16, 16)
    pasted[:, :, 4:12, 6:14] = hr
    expected = up2(a) * pasted + up2((1 - a) * lr)
    assert out.shape == (2, C, 16, 16)
    assert torch.allclose(out, expected, atol=1e-6)


def test_fusion_attention_one_gives_detail_zero_gives_context():
    lr, hr, _, box = _fusion_inputs()
    one = hrda_fuse(lr, hr, 1.0, lr_scale=0.5, hr_box=box)
    zero = hrda_fuse(lr, hr, 0.0, lr_scale=0.5, hr_box=box)
    # attention 0: the context alone, everywhere
    assert torch.allclose(zero, up2(lr), atol=1e-6)
    # attention 1: the detail prediction inside the crop (away from the
    # crop's 1-px rim, where bilinear upsampling meets the masked-out rim)
    assert torch.allclose(one[:, :, 5:11, 7:13], hr[:, :, 1:7, 1:7],
                          atol=1e-6)
    # outside the crop the context alone (2 px away from the crop)
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[2:14, 4:16] = False
    assert torch.allclose(one[..., outside], up2(lr)[..., outside],
                          atol=1e-6)


def test_classwise_and_shared_attention_shapes():
    x = torch.randn(2, 3, 64, 64)
    for classwise, channels in ((True, C), (False, 1)):
        m = build(hrda_cfg(classwise=classwise)).eval()
        feats = m.extract_unscaled_feat(F.interpolate(x, scale_factor=0.5))
        att = m.decode_head.attention(feats)
        assert att.shape == (2, channels, 8, 8)
        assert 0 <= att.min() and att.max() <= 1
    m = build(hrda_cfg(fixed=0.3))
    assert m.decode_head.scale_attention is None
    assert m.decode_head.attention(None) == 0.3


# -------------------------------------------------------- detail crop box
def test_detail_crop_corners_divisible_and_inside():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        y1, y2, x1, x2 = random_crop_box(64, 128, (32, 48), 8, rng)
        assert y1 % 8 == 0 and x1 % 8 == 0
        assert 0 <= y1 and y2 <= 64 and 0 <= x1 and x2 <= 128
        assert (y2 - y1, x2 - x1) == (32, 48)
        seen.add((y1, x1))
    # reference: offsets k * 8 for k < (margin + 1) // 8 -> 4 x 10 corners
    assert {y for y, _ in seen} == {0, 8, 16, 24}
    assert {x for _, x in seen} == set(range(0, 80, 8))
    m = build(hrda_cfg())
    out = m(torch.randn(1, 3, 64, 64), None, mode='train_logits')
    y1, y2, x1, x2 = out['hr_box']
    assert y1 % 8 == 0 and x1 % 8 == 0 and y2 <= 64 and x2 <= 64
    assert out['fused'].shape == (1, C, 16, 16)
    assert out['hr'].shape == (1, C, 8, 8) and out['lr'].shape == (1, C, 8, 8)


# ----------------------------------------------------- HR slide inference
def test_one_window_equals_the_direct_detail_prediction():
    m = build(hrda_cfg(hr_crop=(64, 64))).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        slide = m.decode_head.decode_hr(m.extract_slide_feat(x), 2)
        direct = m.decode_head.head(m.extract_unscaled_feat(x))
    assert len(m.slide_boxes(64, 64)) == 1
    assert torch.allclose(slide, direct, atol=1e-5)


def test_overlapping_windows_average_and_batched_equals_sequential():
    m = build(hrda_cfg(hr_crop=(32, 32))).eval()
    x = torch.randn(2, 3, 64, 96)
    boxes = m.slide_boxes(64, 96)
    # stride = crop / 2: 3 rows x 5 columns of 32x32 crops
    assert len(boxes) == 15 and boxes[1] == (0, 32, 16, 48)
    with torch.no_grad():
        batched = m.decode_head.decode_hr(m.extract_slide_feat(x), 2)
        # sequential, by hand: one crop at a time, pasted at box / 4 and
        # divided by the number of crops covering each output pixel
        acc = torch.zeros(2, C, 16, 24)
        cnt = torch.zeros(1, 1, 16, 24)
        for y1, y2, x1, x2 in boxes:
            logit = m.decode_head.head(
                m.extract_unscaled_feat(x[:, :, y1:y2, x1:x2]))
            acc[:, :, y1 // 4:y2 // 4, x1 // 4:x2 // 4] += logit
            cnt[:, :, y1 // 4:y2 // 4, x1 // 4:x2 // 4] += 1
    assert cnt.min() >= 1 and cnt.max() == 4
    assert torch.allclose(batched, acc / cnt, atol=1e-5)


def test_inference_fuses_context_with_slide_detail():
    m = build(hrda_cfg(hr_crop=(32, 32))).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = m(x, None, mode='tensor')
        lr_feats = m.extract_unscaled_feat(
            F.interpolate(x, scale_factor=0.5, mode='bilinear',
                          align_corners=False))
        lr = m.decode_head.head(lr_feats)
        att = torch.sigmoid(m.decode_head.scale_attention(lr_feats))
        hr = m.decode_head.decode_hr(m.extract_slide_feat(x), 1)
        fused = up2(att) * hr + up2((1 - att) * lr)
        expected = F.interpolate(fused, size=(64, 64), mode='bilinear',
                                 align_corners=False)
    assert out.shape == (1, C, 64, 64)
    assert torch.allclose(out, expected, atol=1e-5)


# -------------------------------------------------------- losses, grads
def test_losses_weights_and_gradients_reach_both_scales_and_attention():
    m = build(hrda_cfg(hr_crop=(32, 32))).train()
    x = torch.randn(2, 3, 64, 64)
    label = torch.randint(0, C, (2, 64, 64))
    out = m(x, None, mode='train_logits')
    out['lr'].retain_grad()
    out['hr'].retain_grad()
    losses = m.decode_head.weighted_losses(out, label)
    # reference weighting: (1 - 0.1) x fused on the label, 0.1 x detail on
    # the label cropped to the detail box (mean CE, no ignored pixels)
    fused_ce = F.cross_entropy(
        F.interpolate(out['fused'], size=(64, 64), mode='bilinear',
                      align_corners=False), label)
    y1, y2, x1, x2 = out['hr_box']
    hr_ce = F.cross_entropy(
        F.interpolate(out['hr'], size=(32, 32), mode='bilinear',
                      align_corners=False), label[:, y1:y2, x1:x2])
    assert losses['loss_ce'].item() == pytest.approx(0.9 * fused_ce.item(),
                                                     rel=1e-5)
    assert losses['hr.loss_ce'].item() == pytest.approx(0.1 * hr_ce.item(),
                                                        rel=1e-5)
    sum(losses.values()).backward()
    assert out['lr'].grad.abs().sum() > 0 and out['hr'].grad.abs().sum() > 0
    for name, module in (('attention', m.decode_head.scale_attention),
                         ('head', m.decode_head.head),
                         ('backbone', m.backbone)):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_stock_mmseg_loss_path():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    m = build(hrda_cfg(hr_crop=(32, 32))).train()
    samples = []
    for _ in range(2):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=torch.randint(0, C, (1, 64, 64)))
        samples.append(ds)
    losses = m(torch.randn(2, 3, 64, 64), samples, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.hr.loss_ce'}


def test_misaligned_crop_corners_truncated_as_the_reference():
    """allow_misaligned_crop: crop corners on a 4 px grid while one context
    output pixel is 8 px (output stride 4 at 0.5): the reference's
    scale_box truncation int(v / 8), a box of the crop's size either way."""
    from mmplugins.models.decode_heads.hrda_head import scale_box
    with pytest.raises(ValueError, match='allow_misaligned_crop'):
        build(hrda_cfg(crop_coord_divisible=4))
    m = build(hrda_cfg(crop_coord_divisible=4,
                       allow_misaligned_crop=True)).train()
    assert m.allow_misaligned_crop
    assert scale_box((4, 36, 12, 44), 8) == (0, 4, 1, 5)
    assert scale_box((12, 44, 4, 36), 8) == (1, 5, 0, 4)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(3)
    samples = []
    for _ in range(2):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=torch.randint(0, C, (1, 64, 64)))
        samples.append(ds)
    for _ in range(4):  # several random boxes, most of them misaligned
        losses = m(torch.randn(2, 3, 64, 64), samples, mode='loss')
        assert all(torch.isfinite(v) for v in losses.values())
    # the hr crop size must still be a multiple of the grid
    with pytest.raises(ValueError, match='hr_crop_size'):
        build(hrda_cfg(hr_crop=(36, 36), crop_coord_divisible=4,
                       allow_misaligned_crop=True))


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize('change,match', [
    (dict(scales=[1, 1]), 'scales'),
    (dict(scales=[2, 1]), 'scales'),
    (dict(scales=[1, 0.5, 0.25]), 'scales'),
    (dict(crop_coord_divisible=4), 'crop_coord_divisible'),
    (dict(hr_crop_size=(36, 32)), 'hr_crop_size'),
    (dict(hr_crop_size=None), 'hr_crop_size'),
    (dict(feature_scale=1), 'feature_scale'),
])
def test_bad_segmentor_arguments(change, match):
    with pytest.raises(ValueError, match=match):
        build(hrda_cfg(**change))


def test_bad_heads_and_crops():
    cfg = hrda_cfg()
    cfg['decode_head']['type'] = 'DAFormerHead'
    with pytest.raises(ValueError, match='decode_head must be an HRDAHead'):
        build(cfg)
    cfg = hrda_cfg()
    cfg['decode_head']['single_scale_head'] = 'SegformerHead'
    with pytest.raises(ValueError, match='single_scale_head'):
        build(cfg)
    m = build(hrda_cfg(hr_crop=(48, 48)))
    with pytest.raises(ValueError, match='hr_crop_size'):  # does not divide
        m(torch.randn(1, 3, 64, 64), None, mode='train_logits')
    m = build(hrda_cfg(hr_crop=(96, 96)))
    with pytest.raises(ValueError, match='hr_crop_size'):  # larger
        m(torch.randn(1, 3, 64, 64), None, mode='train_logits')


def test_context_output_is_attention_weighted_as_the_reference():
    """The reference's head returns (and, with ``lr_loss_weight > 0``,
    supervises) the context after the attention: ``(1 - a * 1[B]) * lr``;
    its loss is ``lr_loss_weight x CE`` of it on the full label."""
    cfg = hrda_cfg(hr_crop=(32, 32))
    cfg['decode_head']['lr_loss_weight'] = 0.3
    m = build(cfg).train()
    x = torch.randn(2, 3, 64, 64)
    label = torch.randint(0, C, (2, 64, 64))
    out = m(x, None, mode='train_logits')
    y1, y2, x1, x2 = out['hr_box']
    with torch.no_grad():
        feats = m.extract_unscaled_feat(F.interpolate(
            x, scale_factor=0.5, mode='bilinear', align_corners=False))
        lr = m.decode_head.head(feats)
        att = torch.sigmoid(m.decode_head.scale_attention(feats))
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, y1 // 8:y2 // 8, x1 // 8:x2 // 8] = 1
    weighted = (1 - att * mask) * lr
    assert torch.allclose(out['lr'], weighted, atol=1e-5)
    assert not torch.allclose(out['lr'], lr, atol=1e-3)
    losses = m.decode_head.weighted_losses(out, label)
    ce = F.cross_entropy(F.interpolate(weighted, size=(64, 64),
                                       mode='bilinear', align_corners=False),
                         label)
    assert losses['lr.loss_ce'].item() == pytest.approx(0.3 * ce.item(),
                                                        rel=1e-5)
    assert losses['loss_ce'].item() == pytest.approx(
        0.6 * F.cross_entropy(F.interpolate(
            out['fused'], size=(64, 64), mode='bilinear',
            align_corners=False), label).item(), rel=1e-5)
