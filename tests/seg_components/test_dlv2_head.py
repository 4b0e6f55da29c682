"""DLV2Head (DeepLabV2 of the UDA papers) against plain torch, and a
DeepLabV2 student (dilated ResNet-V1c, output stride 8) in the UDA step."""
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmplugins  # noqa: F401
from mmplugins.models.decode_heads.dlv2_head import DLV2Head

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'uda'))
from _tiny import NUM_CLASSES, student_cfg, uda_batch  # noqa: E402


def build(cfg):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg)


def head_cfg(**kw):
    cfg = dict(type='DLV2Head', in_channels=6, in_index=3,
               dilations=(6, 12), num_classes=NUM_CLASSES,
               align_corners=False,
               loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                loss_weight=1.0))
    cfg.update(kw)
    return cfg


def test_output_is_the_sum_of_dilated_convs():
    torch.manual_seed(0)
    head = build(head_cfg(dilations=(1, 6, 12, 3)))
    assert isinstance(head, DLV2Head)
    head.init_weights()
    for conv in head.aspp_modules:  # random biases: the sum must keep them
        torch.nn.init.normal_(conv.conv.bias)
    feats = [torch.randn(2, 4, 5, 7) for _ in range(3)]
    feats.append(torch.randn(2, 6, 11, 13))
    expected = 0
    for d, conv in zip((1, 6, 12, 3), head.aspp_modules):
        w, b = conv.conv.weight, conv.conv.bias
        k = 1 if d == 1 else 3
        assert w.shape == (NUM_CLASSES, 6, k, k)
        expected = expected + F.conv2d(feats[3], w, b,
                                       padding=0 if d == 1 else d,
                                       dilation=d)
    out = head(feats)
    assert out.shape == (2, NUM_CLASSES, 11, 13)
    torch.testing.assert_close(out, expected)
    # no hidden layer, no classifier beyond the branches
    assert not hasattr(head, 'conv_seg') and head.dropout is None
    n = sum(p.numel() for p in head.parameters())
    assert n == NUM_CLASSES * (6 * 1 + 1 + 3 * (6 * 9 + 1))


def test_reference_init_on_the_branches():
    torch.manual_seed(0)
    head = build(head_cfg(in_channels=256, dilations=(6, 12, 18, 24)))
    head.init_weights()
    w = torch.cat([c.conv.weight.flatten() for c in head.aspp_modules])
    assert w.std().item() == pytest.approx(0.01, rel=0.05)
    assert w.mean().abs().item() < 1e-3
    for c in head.aspp_modules:
        assert c.conv.bias.abs().max().item() == 0


@pytest.mark.parametrize('bad', [dict(channels=256), dict(dropout_ratio=0.1),
                                 dict(norm_cfg=dict(type='BN')),
                                 dict(dilations=()), dict(dilations=(6, 0)),
                                 dict(in_channels=[6, 6])])
def test_bad_arguments(bad):
    with pytest.raises(ValueError, match='DLV2Head'):
        build(head_cfg(**bad))


def dlv2_student():
    cfg = student_cfg()
    cfg['backbone'] = dict(
        type='ResNetV1c', depth=18, base_channels=8, stem_channels=8,
        num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1), norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False, style='pytorch', contract_dilation=True)
    cfg['decode_head'] = head_cfg(in_channels=64)
    return cfg


def test_dlv2_student_trains_in_the_uda_step():
    """DeepLabV2 (ResNet-V1c, dilated: output stride 8) + DACS mixing:
    two UDA iterations update every branch; the source loss is the CE of
    the student's upsampled logits."""
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    m = build(dict(type='UDASegmentor', segmentor=dlv2_student(),
                   mix='class'))
    m.init_weights()
    m.train()
    student = m.student
    batch = uda_batch(dist=False)
    with torch.no_grad():
        data = m.data_preprocessor(
            dict(inputs=batch['inputs'],
                 data_samples=batch['data_samples']), True)
        logits = student.encode_decode(data['inputs'], [
            s.metainfo for s in data['data_samples']])
        feats = student.extract_feat(data['inputs'])
    assert feats[-1].shape[-2:] == (32 // 8, 64 // 8)  # output stride 8
    label = torch.stack([s.gt_sem_seg.data[0]
                         for s in data['data_samples']])
    before = [c.conv.weight.detach().clone()
              for c in student.decode_head.aspp_modules]
    ow = build_optim_wrapper(m, dict(type='OptimWrapper',
                                     optimizer=dict(type='SGD', lr=0.01)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        log = m.train_step(batch, ow)
        assert 'mix.loss' in log
        torch.testing.assert_close(
            log['src.loss'], F.cross_entropy(logits, label,
                                             ignore_index=255),
            rtol=1e-4, atol=1e-5)
        log2 = m.train_step(uda_batch(dist=False, seed=1), ow)
    assert torch.isfinite(log2['loss'])
    for b, c in zip(before, student.decode_head.aspp_modules):
        assert not torch.equal(b, c.conv.weight)


def test_hrda_on_dlv2_trains_in_the_uda_step():
    """HRDA with DeepLabV2 as single_scale_head (the reference's
    ``hrda1-512-0.1_dlv2red``): the attention is a second DLV2Head of the
    same dilations, the fusion uses output stride 8; two UDA iterations."""
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    seg = dlv2_student()
    seg['decode_head'].update(type='HRDAHead', single_scale_head='DLV2Head',
                              hr_loss_weight=0.1,
                              init_cfg=dict(type='Normal', std=0.01,
                                            override=dict(
                                                name='aspp_modules')))
    # output stride 8 / context scale 0.5 = 16: crops on that grid
    seg.update(type='HRDAEncoderDecoder', scales=[1, 0.5],
               hr_crop_size=(16, 32), crop_coord_divisible=16)
    torch.manual_seed(0)
    m = build(dict(type='UDASegmentor', segmentor=seg, mix='class'))
    m.init_weights()
    m.train()
    head = m.student.decode_head
    assert head.output_stride == 8
    for sub in (head.head, head.scale_attention):
        assert isinstance(sub, DLV2Head) and sub.dilations == (6, 12)
        assert sub.out_channels == NUM_CLASSES
        w = torch.cat([c.conv.weight.flatten() for c in sub.aspp_modules])
        assert w.std().item() == pytest.approx(0.01, rel=0.1)
    with pytest.raises(ValueError, match='multiples of output_stride'):
        build(dict(seg, crop_coord_divisible=8))
    ow = build_optim_wrapper(m, dict(type='OptimWrapper',
                                     optimizer=dict(type='SGD', lr=0.01)))
    before = head.scale_attention.aspp_modules[0].conv.weight.detach().clone()
    with DefaultScope.overwrite_default_scope('mmseg'):
        for seed in (0, 1):
            log = m.train_step(uda_batch(dist=False, seed=seed), ow)
            assert torch.isfinite(log['loss']) and 'mix.loss' in log
        m.eval()
        with torch.no_grad():
            logits = m.student.encode_decode(
                torch.randn(1, 3, 32, 64),
                [dict(img_shape=(32, 64), ori_shape=(32, 64),
                      pad_shape=(32, 64))])
    assert logits.shape == (1, NUM_CLASSES, 32, 64)
    assert not torch.equal(
        before, head.scale_attention.aspp_modules[0].conv.weight)
