"""The papers' decoder ablations as the converter maps them, each in the UDA
step: two iterations on a tiny backbone, the source loss checked against
the cross-entropy of the student's own logits; and the reference's
SegFormerHead (-> DAFormerHead with a 'conv' fusion) against plain torch."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmplugins  # noqa: F401
from _tiny import NUM_CLASSES, student_cfg, uda_batch

NORM = dict(type='BN', requires_grad=True)
CE = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
RESNET = dict(type='ResNetV1c', depth=18, base_channels=8, stem_channels=8,
              num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
              strides=(1, 2, 1, 1), norm_cfg=NORM, norm_eval=False,
              style='pytorch', contract_dilation=True)
MIT_CH = [8, 16, 24, 32]
BASE = dict(num_classes=NUM_CLASSES, align_corners=False, loss_decode=CE)

#: name -> (backbone or None for the tiny MiT, decode_head) as the
#: converter writes them (small widths)
DECODERS = {
    'ISAHead': (RESNET, dict(
        type='ISAHead', in_channels=64, in_index=3, channels=16,
        isa_channels=8, down_factor=(2, 2), dropout_ratio=0.1,
        norm_cfg=None, **BASE)),
    'DepthwiseSeparableASPPHead': (RESNET, dict(
        type='DepthwiseSeparableASPPHead', in_channels=64, in_index=3,
        channels=16, dilations=(1, 12, 24, 36), c1_in_channels=8,
        c1_channels=8, dropout_ratio=0.1, norm_cfg=None, **BASE)),
    'DAHead': (RESNET, dict(
        type='DAHead', in_channels=64, in_index=3, channels=16,
        pam_channels=8, dropout_ratio=0.1, norm_cfg=None, **BASE)),
    'UPerHead': (None, dict(
        type='UPerHead', in_channels=MIT_CH, in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6), channels=16, dropout_ratio=0.1,
        norm_cfg=NORM, **BASE)),
    'SegFormerHead': (None, dict(
        type='DAFormerHead', in_channels=MIT_CH, in_index=[0, 1, 2, 3],
        channels=24, embed_dims=24, dropout_ratio=0.1, norm_cfg=NORM,
        fusion_cfg=dict(type='conv', kernel_size=1,
                        act_cfg=dict(type='ReLU')),
        init_cfg=None, **BASE)),
    'DAFormer conv1': (None, dict(
        type='DAFormerHead', in_channels=MIT_CH, in_index=[0, 1, 2, 3],
        channels=16, embed_dims=16, dropout_ratio=0.1, norm_cfg=NORM,
        fusion_cfg=dict(type='conv', kernel_size=1, norm_cfg=NORM,
                        act_cfg=dict(type='ReLU')), **BASE)),
    'DAFormer isa': (None, dict(
        type='DAFormerHead', in_channels=MIT_CH, in_index=[0, 1, 2, 3],
        channels=16, embed_dims=16, dropout_ratio=0.1, norm_cfg=NORM,
        decoder_params=dict(fusion_cfg=dict(
            type='isa', isa_channels=8, key_query_num_convs=1,
            down_factor=(2, 2), act_cfg=dict(type='ReLU'), norm_cfg=NORM)),
        **BASE)),
    'DAFormer sepaspp_bottleneck': (None, dict(
        type='DAFormerHead', in_channels=MIT_CH, in_index=[0, 1, 2, 3],
        channels=16, embed_dims=16, dropout_ratio=0.1, norm_cfg=NORM,
        decoder_params=dict(embed_neck_cfg=dict(
            type='rawconv_and_aspp', kernel_size=1, sep=True,
            dilations=(1, 6, 12, 18), pool=False,
            act_cfg=dict(type='ReLU'), norm_cfg=NORM)),
        **BASE)),
}


def build(cfg):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(copy.deepcopy(cfg))


@pytest.mark.parametrize('name', list(DECODERS))
def test_decoder_trains_two_uda_iterations(name):
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    backbone, head = DECODERS[name]
    seg = student_cfg()
    if backbone is not None:
        seg['backbone'] = backbone
    seg['decode_head'] = head
    torch.manual_seed(0)
    m = build(dict(type='UDASegmentor', segmentor=seg, mix='class'))
    m.init_weights()
    m.train()
    batch = uda_batch(dist=False)
    with torch.no_grad():
        data = m.data_preprocessor(dict(inputs=batch['inputs'],
                                        data_samples=batch['data_samples']),
                                   True)
        logits = m.student.encode_decode(
            data['inputs'], [s.metainfo for s in data['data_samples']])
    label = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    cls = m.student.decode_head.conv_seg.weight
    before = cls.detach().clone()
    ow = build_optim_wrapper(m, dict(type='OptimWrapper',
                                     optimizer=dict(type='SGD', lr=0.01)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        log = m.train_step(batch, ow)
        # the UDA step's source loss is the CE of the student's logits
        # (train-mode dropout aside: compare with dropout off)
        if m.student.decode_head.dropout is None:
            torch.testing.assert_close(
                log['src.loss'], F.cross_entropy(logits, label),
                rtol=1e-4, atol=1e-5)
        assert 'mix.loss' in log
        log2 = m.train_step(uda_batch(dist=False, seed=1), ow)
    assert torch.isfinite(log2['loss'])
    assert not torch.equal(before, cls)


def test_source_loss_matches_with_dropout_off():
    """The value check above for a head whose dropout is off (so train
    and eval logits agree): the ISA head with dropout_ratio=0."""
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    seg = student_cfg()
    seg['backbone'] = RESNET
    seg['decode_head'] = dict(DECODERS['ISAHead'][1], dropout_ratio=0.0)
    torch.manual_seed(0)
    m = build(dict(type='UDASegmentor', segmentor=seg, mix='class'))
    m.init_weights()
    m.train()
    batch = uda_batch(dist=False)
    with torch.no_grad():
        data = m.data_preprocessor(dict(inputs=batch['inputs'],
                                        data_samples=batch['data_samples']),
                                   True)
        logits = m.student.encode_decode(
            data['inputs'], [s.metainfo for s in data['data_samples']])
    label = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    ow = build_optim_wrapper(m, dict(type='OptimWrapper',
                                     optimizer=dict(type='SGD', lr=0.01)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        log = m.train_step(batch, ow)
    torch.testing.assert_close(log['src.loss'],
                               F.cross_entropy(logits, label),
                               rtol=1e-4, atol=1e-5)


def test_segformer_head_mapping_is_the_reference_segformer_head():
    """Reference SegFormerHead: per-level Linear(c_i -> E), upsampled to
    level 0, concatenated, ConvModule(4E -> E, 1x1, BN, ReLU), dropout,
    Conv2d(E -> classes); its classifier keeps PyTorch's default init."""
    torch.manual_seed(0)
    head = build(DECODERS['SegFormerHead'][1])
    head.init_weights()
    head.eval()
    feats = [torch.randn(2, c, 16 // 2**i, 24 // 2**i)
             for i, c in enumerate(MIT_CH)]
    outs = []
    for x, emb in zip(feats, head.embed_layers):
        w = emb.weight.flatten(1)  # the Linear's (E, c) matrix
        y = torch.einsum('nchw,ec->nehw', x, w) + emb.bias[None, :, None,
                                                           None]
        outs.append(F.interpolate(y, size=(16, 24), mode='bilinear',
                                  align_corners=False))
    fuse = head.fuse_layer
    y = F.conv2d(torch.cat(outs, 1), fuse.conv.weight, fuse.conv.bias)
    bn = fuse.bn
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                     False, 0.0, bn.eps).relu()
    expected = F.conv2d(y, head.conv_seg.weight, head.conv_seg.bias)
    torch.testing.assert_close(head(feats), expected, rtol=1e-4, atol=1e-5)
    # PyTorch's default Conv2d init (U(-1/sqrt(fan_in), +)), not N(0, 0.01)
    bound = 1 / 24 ** 0.5
    w = head.conv_seg.weight
    assert w.abs().max().item() <= bound
    assert w.std().item() > 0.5 * bound / 3 ** 0.5


def test_isa_fusion_is_global_then_local_attention_by_slicing():
    """ISAFusion against its definition written with strided slices: the
    global relation over each in-cell offset's sub-grid, then the local one
    inside each cell; 5x6 input with 2x2 cells (one padded row)."""
    from mmplugins.models.decode_heads.isa_fusion import ISAFusion
    torch.manual_seed(0)
    m = ISAFusion(6, 6, 4, down_factor=(2, 2), key_query_num_convs=1,
                  in_conv_kernel_size=None, norm_cfg=NORM).eval()
    for blk in (m.global_relation, m.local_relation):  # one key/query conv
        assert type(blk.key_project).__name__ == 'ConvModule'
        assert type(blk.query_project).__name__ == 'ConvModule'
    x = torch.randn(2, 6, 5, 6)
    xp = F.pad(x, (0, 0, 0, 1))  # pad_h = 1: 0 rows on top, 1 below
    g = torch.empty_like(xp)
    for cy in range(2):
        for cx in range(2):
            g[:, :, cy::2, cx::2] = m.global_relation(xp[:, :, cy::2, cx::2])
    out = torch.empty_like(g)
    for gy in range(3):
        for gx in range(3):
            sl = (slice(None), slice(None), slice(2 * gy, 2 * gy + 2),
                  slice(2 * gx, 2 * gx + 2))
            out[sl] = m.local_relation(g[sl])
    with torch.no_grad():
        torch.testing.assert_close(m(x), out[:, :, :5], rtol=1e-4,
                                   atol=1e-5)


def test_daformer_variants_structure():
    isa = build(DECODERS['DAFormer isa'][1])
    assert type(isa.fuse_layer).__name__ == 'ISAFusion'
    assert isa.fuse_layer.in_conv.conv.kernel_size == (1, 1)
    neck = build(DECODERS['DAFormer sepaspp_bottleneck'][1])
    raw, aspp = neck.embed_layers[-1]
    assert isinstance(raw, torch.nn.Conv2d) and raw.kernel_size == (1, 1)
    assert raw.bias is not None and raw.in_channels == MIT_CH[-1]
    assert aspp.aspp_modules.dilations == (1, 6, 12, 18)
    assert type(aspp.aspp_modules).__name__ == \
        'DepthwiseSeparableASPPModule'
    assert all(isinstance(e, torch.nn.Conv2d)
               for e in neck.embed_layers[:-1])


def test_dahead_source_loss_sums_its_three_outputs():
    """DAHead (DANet): the reference sums the CE of pam_cam, pam and cam;
    pseudo-labels and predictions come from pam_cam."""
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    seg = student_cfg()
    seg['backbone'] = RESNET
    seg['decode_head'] = dict(DECODERS['DAHead'][1], dropout_ratio=0.0)
    torch.manual_seed(0)
    m = build(dict(type='UDASegmentor', segmentor=seg, mix='class'))
    m.init_weights()
    m.train()
    batch = uda_batch(dist=False)
    with torch.no_grad():
        data = m.data_preprocessor(dict(inputs=batch['inputs'],
                                        data_samples=batch['data_samples']),
                                   True)
        outs = m.student(data['inputs'], None, mode='tensor')
    label = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    ce = [F.cross_entropy(F.interpolate(o, size=label.shape[-2:],
                                        mode='bilinear',
                                        align_corners=False), label)
          for o in outs]
    ow = build_optim_wrapper(m, dict(type='OptimWrapper',
                                     optimizer=dict(type='SGD', lr=0.01)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        log = m.train_step(batch, ow)
    for key, v in zip(('src.loss_ce', 'src.pam.loss_ce', 'src.cam.loss_ce'),
                      ce):
        torch.testing.assert_close(log[key], v, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(log['src.loss'], sum(ce), rtol=1e-4,
                               atol=1e-5)


def test_segformer_adapter_neck_and_dlv3p_on_mit_in_the_uda_step():
    """DAFormer's ``sfa_dlv3p`` ablation: the neck replaces MiT's last
    level with itself upsampled x4 (bilinear), the DeepLabV3+ head reads it
    and level 0; two UDA iterations."""
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    neck = build(dict(type='SegFormerAdapter'))
    feats = [torch.randn(2, c, 16 // 2**i, 32 // 2**i)
             for i, c in enumerate(MIT_CH)]
    out = neck(feats)
    assert all(o is f for o, f in zip(out[:3], feats[:3]))
    torch.testing.assert_close(out[3], F.interpolate(
        feats[3], scale_factor=4, mode='bilinear', align_corners=False))
    two = build(dict(type='SegFormerAdapter', out_layers=[2, 3],
                     scales=[1, 2]))(feats)[3]
    torch.testing.assert_close(two, torch.cat([feats[2], F.interpolate(
        feats[3], scale_factor=2, mode='bilinear')], 1))
    with pytest.raises(ValueError, match='SegFormerAdapter'):
        build(dict(type='SegFormerAdapter', out_layers=[3], scales=[]))

    seg = student_cfg()
    seg['neck'] = dict(type='SegFormerAdapter')
    seg['decode_head'] = dict(
        type='DepthwiseSeparableASPPHead', in_channels=MIT_CH[3],
        in_index=3, channels=16, dilations=(1, 12, 24, 36),
        c1_in_channels=MIT_CH[0], c1_channels=8, dropout_ratio=0.1,
        norm_cfg=None, **BASE)
    torch.manual_seed(0)
    m = build(dict(type='UDASegmentor', segmentor=seg, mix='class',
                   imnet_feature_dist_lambda=0.005))
    m.init_weights()
    m.train()
    ow = build_optim_wrapper(m, dict(type='OptimWrapper',
                                     optimizer=dict(type='SGD', lr=0.01)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        for seed in (0, 1):
            log = m.train_step(uda_batch(dist=False, seed=seed), ow)
            assert torch.isfinite(log['loss'])
            assert {'mix.loss', 'fd.loss'} <= set(log)
