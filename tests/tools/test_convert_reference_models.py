"""Reference-config converter, model side beyond MiT + DAFormer: DeepLabV2
(dilated ResNet-V1c + DLV2Head, also as HRDA's single-scale head) and the
ResNet-family backbone ablations. Reference-style configs are written here
from scratch (mmseg 0.x keys)."""
import copy
import textwrap

import pytest

from test_convert_reference_config import (build_model, crc, preflight,
                                           write_family)

# DeepLabV2 as the papers' ``dlv2red`` on ResNet-101 V1c (dilated: output
# stride 8); the whole model replaced over the family's MiT one
DLV2_MODEL = '''
model = dict(
    _delete_=True,
    type='EncoderDecoder',
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(type='ResNetV1c', depth=101, num_stages=4,
                  out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                  strides=(1, 2, 1, 1),
                  norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(
        type='DLV2Head', in_channels=2048, in_index=3, dilations=(6, 12),
        num_classes=19, align_corners=False,
        init_cfg=dict(type='Normal', std=0.01,
                      override=dict(name='aspp_modules')),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
'''

HRDA_DLV2 = '''
model = dict(
    type='HRDAEncoderDecoder', scales=[1, 0.5], hr_crop_size=(256, 256),
    feature_scale=0.5, crop_coord_divisible={div}, hr_slide_inference=True,
    decode_head=dict(type='HRDAHead', single_scale_head='DLV2Head',
                     attention_classwise=True, hr_loss_weight=0.1))
'''


def _ref(tmp_path, *extras):
    ref = tmp_path / 'ref'
    ref.mkdir(exist_ok=True)
    top = write_family(ref, 'mic', iters=2000, warmup=150)
    for i, extra in enumerate(extras):
        name = f'v{i}.py'
        (ref / name).write_text(f'_base_ = [{top!r}]\n' +
                                textwrap.dedent(extra))
        top = str(ref / name)
    return top


def _small(cfg, depth=18):
    """The converted model with a small ResNet (same layout) to build."""
    cfg = copy.deepcopy(cfg)
    seg = cfg.model.segmentor
    seg.backbone.depth = depth
    seg.decode_head.in_channels = 512
    return cfg


def test_deeplabv2_resnet101_converts_and_builds(tmp_path):
    src = _ref(tmp_path, DLV2_MODEL)
    out = tmp_path / 'out' / 'dlv2.py'
    conv = crc.convert_file(src, str(out))
    assert conv.unsupported == []
    cfg = preflight(out)
    seg = cfg.model.segmentor
    assert seg.type == 'EncoderDecoder'
    assert seg.backbone == dict(
        type='ResNetV1c', depth=101, num_stages=4, out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
        style='pytorch', contract_dilation=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://resnet101_v1c'))
    assert seg.decode_head == dict(
        type='DLV2Head', in_channels=2048, in_index=3, dilations=(6, 12),
        num_classes=19, align_corners=False,
        init_cfg=dict(type='Normal', std=0.01,
                      override=dict(name='aspp_modules')),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0))
    # the MiT checkpoint note is for MiT only
    assert 'mit2mmseg' not in out.read_text()
    model = build_model(_small(cfg))
    head = model.student.decode_head
    assert type(head).__name__ == 'DLV2Head' and head.dilations == (6, 12)
    assert type(model.student.backbone).__name__ == 'ResNetV1c'


@pytest.mark.parametrize('btype,extra', [
    ('ResNeSt', dict(depth=101, stem_channels=128, radix=2,
                     reduction_factor=4, avg_down_stride=True)),
    ('ResNeXt', dict(depth=50, groups=32, base_width=4)),
])
def test_resnet_family_ablation_backbones(tmp_path, btype, extra):
    """The backbone ablations: the reference's experiments.py swaps the
    type over the ResNetV1c base (its keys stay)."""
    items = ', '.join(f'{k}={v!r}' for k, v in extra.items())
    src = _ref(tmp_path, DLV2_MODEL,
               f"model = dict(pretrained='open-mmlab://x', backbone=dict("
               f"type={btype!r}, {items}))\n")
    out = tmp_path / 'out' / 'bb.py'
    conv = crc.convert_file(src, str(out))
    assert conv.unsupported == []
    bb = preflight(out).model.segmentor.backbone
    assert bb.type == btype
    for k, v in extra.items():
        assert bb[k] == v, k
    assert bb.contract_dilation is True and bb.strides == (1, 2, 1, 1)
    assert bb.init_cfg == dict(type='Pretrained', checkpoint='open-mmlab://x')


def test_unknown_backbone_and_backbone_key_are_refused(tmp_path):
    src = _ref(tmp_path, DLV2_MODEL,
               "model = dict(backbone=dict(dcn_typo=1))\n")
    with pytest.raises(crc.ConversionError,
                       match=r'model\.backbone\.dcn_typo=1'):
        crc.convert_file(src, str(tmp_path / 'x.py'))
    src = _ref(tmp_path, DLV2_MODEL,
               "model = dict(backbone=dict(type='HRNet'))\n")
    with pytest.raises(crc.ConversionError, match='ResNetV1c, ResNeXt'):
        crc.convert_file(src, str(tmp_path / 'x.py'))


def test_hrda_on_deeplabv2_uses_output_stride_8(tmp_path):
    """HRDA's single_scale_head='DLV2Head': crops on the grid of output
    stride 8 / context scale 0.5 = 16 convert and build; the reference's
    crop_coord_divisible=8 (half a context output pixel) is refused with
    that reason."""
    src = _ref(tmp_path, DLV2_MODEL, HRDA_DLV2.format(div=16))
    out = tmp_path / 'out' / 'hrda_dlv2.py'
    conv = crc.convert_file(src, str(out))
    assert conv.unsupported == []
    cfg = preflight(out)
    seg = cfg.model.segmentor
    assert seg.type == 'HRDAEncoderDecoder'
    assert seg.decode_head.single_scale_head == 'DLV2Head'
    assert seg.decode_head.dilations == (6, 12)
    assert seg.crop_coord_divisible == 16
    model = build_model(_small(cfg))
    assert model.student.decode_head.output_stride == 8
    assert type(model.student.decode_head.scale_attention).__name__ == \
        'DLV2Head'

    # the papers' DLV2 HRDA row: 8 px corners on a 16 px context grid,
    # truncated as the reference does
    src = _ref(tmp_path, DLV2_MODEL, HRDA_DLV2.format(div=8))
    crc.convert_file(src, str(tmp_path / 'x.py'))
    seg = preflight(tmp_path / 'x.py').model.segmentor
    assert seg.crop_coord_divisible == 8 and seg.allow_misaligned_crop


SEGFORMER_HEAD = '''
model = dict(decode_head=dict(
    _delete_=True, type='SegFormerHead', in_channels=[32, 64, 160, 256],
    in_index=[0, 1, 2, 3], channels=128, dropout_ratio=0.1, num_classes=19,
    norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
    decoder_params=dict(embed_dim=768, conv_kernel_size=1),
    loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=1.0)))
'''

DECODERS = {
    'ISAHead': "isa_channels=256, down_factor=(8, 8)",
    'DepthwiseSeparableASPPHead':
        "dilations=(1, 12, 24, 36), c1_in_channels=256, c1_channels=48",
}


def test_segformer_head_maps_to_daformer_head_conv_fusion(tmp_path):
    src = _ref(tmp_path, SEGFORMER_HEAD)
    out = tmp_path / 'out' / 'sf.py'
    conv = crc.convert_file(src, str(out))
    assert conv.unsupported == []
    head = preflight(out).model.segmentor.decode_head
    assert head == dict(
        type='DAFormerHead', in_channels=[32, 64, 160, 256],
        in_index=[0, 1, 2, 3], dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
        channels=768, embed_dims=768,
        fusion_cfg=dict(type='conv', kernel_size=1,
                        act_cfg=dict(type='ReLU')),
        init_cfg=None,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0))


@pytest.mark.parametrize('htype', list(DECODERS))
def test_mmseg_heads_on_resnet_keep_their_arguments(tmp_path, htype):
    extra = (f"model = dict(decode_head=dict(_delete_=True, type={htype!r}, "
             "in_channels=2048, in_index=3, channels=512, dropout_ratio=0.1,"
             " num_classes=19, norm_cfg=None, align_corners=False, "
             f"{DECODERS[htype]}))\n")
    src = _ref(tmp_path, DLV2_MODEL, extra)
    out = tmp_path / 'out' / 'h.py'
    conv = crc.convert_file(src, str(out))
    assert conv.unsupported == []
    head = preflight(out).model.segmentor.decode_head
    expected = dict(type=htype, in_channels=2048, in_index=3, channels=512,
                    dropout_ratio=0.1, num_classes=19, norm_cfg=None,
                    align_corners=False)
    expected.update(eval(f'dict({DECODERS[htype]})'))
    assert head == expected


def test_daformer_conv1_fusion_and_refused_variants(tmp_path):
    conv1 = ("model = dict(decode_head=dict(decoder_params=dict(fusion_cfg="
             "dict(_delete_=True, type='conv', kernel_size=1, "
             "act_cfg=dict(type='ReLU'), norm_cfg=dict(type='BN', "
             "requires_grad=True)))))\n")
    src = _ref(tmp_path, conv1)
    out = tmp_path / 'out' / 'c1.py'
    conv = crc.convert_file(src, str(out))
    assert conv.unsupported == []
    head = preflight(out).model.segmentor.decode_head
    assert head.fusion_cfg == dict(type='conv', kernel_size=1,
                                   norm_cfg=dict(type='BN',
                                                 requires_grad=True),
                                   act_cfg=dict(type='ReLU'))


def test_daformer_isa_fusion_and_bottleneck_neck(tmp_path):
    """DAFormer's fusion ablation 'isa' and the 'rawconv_and_aspp' last-level
    embedding convert, pass the pre-flight (the head's NESTED_TYPES) and
    build."""
    isa = ("model = dict(decode_head=dict(decoder_params=dict(fusion_cfg="
           "dict(_delete_=True, type='isa', isa_channels=32, "
           "key_query_num_convs=1, down_factor=(8, 8), "
           "act_cfg=dict(type='ReLU'), norm_cfg=dict(type='BN', "
           "requires_grad=True)))))\n")
    neck = ("model = dict(decode_head=dict(decoder_params=dict("
            "embed_neck_cfg=dict(_delete_=True, type='rawconv_and_aspp', "
            "kernel_size=1, sep=True, dilations=(1, 6, 12, 18), pool=False,"
            " act_cfg=dict(type='ReLU'), norm_cfg=dict(type='BN', "
            "requires_grad=True)))))\n")
    for name, extra, key, expected in (
            ('isa', isa, 'fusion_cfg', dict(
                type='isa', isa_channels=32, key_query_num_convs=1,
                down_factor=(8, 8), act_cfg=dict(type='ReLU'),
                norm_cfg=dict(type='BN', requires_grad=True))),
            ('neck', neck, 'embed_neck_cfg', dict(
                type='rawconv_and_aspp', kernel_size=1, sep=True,
                dilations=(1, 6, 12, 18), pool=False,
                act_cfg=dict(type='ReLU'),
                norm_cfg=dict(type='BN', requires_grad=True)))):
        src = _ref(tmp_path / name if (tmp_path / name).mkdir() is None
                   else None, extra)
        out = tmp_path / name / 'out.py'
        conv = crc.convert_file(src, str(out))
        assert conv.unsupported == [], conv.unsupported
        cfg = preflight(out)
        head = cfg.model.segmentor.decode_head
        assert head[key] == expected
        build_model(cfg)


def test_mic_deeplabv2_real_config_builds():
    """configs/real/mic_dlv2_gta2cs.py: the MIC recipe with the DeepLabV2
    student (nothing of the DAFormer head left), pre-flight, build."""
    import os.path as osp
    from mmengine.config import Config
    from _testutils import ROOT
    path = osp.join(ROOT, 'configs/real/mic_dlv2_gta2cs.py')
    cfg = Config.fromfile(path)
    seg = cfg.model.segmentor
    assert seg.backbone.type == 'ResNetV1c' and seg.backbone.depth == 101
    assert seg.backbone.init_cfg.checkpoint == 'open-mmlab://resnet101_v1c'
    assert dict(seg.decode_head) == dict(
        type='DLV2Head', in_channels=2048, in_index=3, dilations=(6, 12),
        num_classes=19, align_corners=False,
        init_cfg=dict(type='Normal', std=0.01,
                      override=dict(name='aspp_modules')),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0))
    m = cfg.model
    assert (m.mask_lambda, m.mask_block_size, m.mask_ratio, m.alpha,
            m.imnet_feature_dist_lambda) == (1.0, 32, 0.7, 0.999, 0.005)
    cfg = preflight(path)
    model = build_model(_small(cfg))
    assert type(model.student.decode_head).__name__ == 'DLV2Head'
    assert type(model.teacher.backbone).__name__ == 'ResNetV1c'


@pytest.mark.parametrize('extra, expected', [
    # HRDA's 'samescale' ablation: both crops at full resolution
    ('model = dict(scales=[1, 1], feature_scale=1)',
     r'model\.scales=\[1, 1\]'),
    # the feature distance on both scales
    ("model = dict(feature_scale='all')", r"model\.feature_scale='all'"),
])
def test_hrda_scale_ablations_are_refused_with_a_reason(tmp_path, extra,
                                                        expected):
    from test_convert_reference_config import _hrda_ref
    src = _hrda_ref(tmp_path, extra)
    with pytest.raises(crc.ConversionError, match=expected):
        crc.convert_file(str(src), str(tmp_path / 'x.py'))


def test_segformer_adapter_neck_converts(tmp_path):
    extra = ("model = dict(neck=dict(type='SegFormerAdapter'), "
             "decode_head=dict(_delete_=True, "
             "type='DepthwiseSeparableASPPHead', in_channels=256, "
             "in_index=3, channels=64, dilations=(1, 12, 24, 36), "
             "c1_in_channels=32, c1_channels=48, dropout_ratio=0.1, "
             "num_classes=19, norm_cfg=None, align_corners=False))\n")
    src = _ref(tmp_path, extra)
    out = tmp_path / 'out' / 'sfa.py'
    conv = crc.convert_file(src, str(out))
    assert conv.unsupported == []
    cfg = preflight(out)
    assert cfg.model.segmentor.neck == dict(type='SegFormerAdapter')
    model = build_model(cfg)
    assert type(model.student.neck).__name__ == 'SegFormerAdapter'
    src = _ref(tmp_path, "model = dict(neck=dict(type='FPN'))\n")
    with pytest.raises(crc.ConversionError,
                       match=r"model\.neck=\{'type': 'FPN'\}"):
        crc.convert_file(src, str(tmp_path / 'x.py'))
