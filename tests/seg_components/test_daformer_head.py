"""DAFormerHead on MiT-B0 features: shapes, loss, params, registry."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmplugins  # noqa: F401
from mmplugins.models.decode_heads.daformer_head import DAFormerHead

B0_CHANNELS = [32, 64, 160, 256]


def head_cfg(**kwargs):
    cfg = dict(type='DAFormerHead', in_channels=B0_CHANNELS,
               in_index=[0, 1, 2, 3], channels=256, embed_dims=256,
               num_classes=12, dropout_ratio=0.1,
               norm_cfg=dict(type='BN', requires_grad=True),
               align_corners=False,
               fusion_cfg=dict(sep=True, dilations=(1, 6, 12, 18),
                               pool=False),
               loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                loss_weight=1.0))
    cfg.update(kwargs)
    return cfg


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def b0_feats(mit_b0_cfg):
    torch.manual_seed(0)
    backbone = MODELS.build(mit_b0_cfg).eval()
    with torch.no_grad():
        return backbone(torch.randn(2, 3, 64, 96))


def test_forward_loss_with_mit_b0(b0_feats):
    assert [f.shape[1] for f in b0_feats] == B0_CHANNELS
    torch.manual_seed(0)
    head = MODELS.build(head_cfg())
    assert isinstance(head, DAFormerHead)
    logits = head(list(b0_feats))
    assert logits.shape == (2, 12, 16, 24)  # 1/4 of the input
    samples = []
    for i in range(2):
        label = torch.randint(0, 12, (1, 64, 96))
        label[:, :8] = 255
        s = SegDataSample(metainfo=dict(img_shape=(64, 96),
                                        pad_shape=(64, 96)))
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    losses = head.loss(list(b0_feats), samples, train_cfg=dict())
    assert set(losses) == {'loss_ce', 'acc_seg'}
    # random init, 12 classes: CE close to log(12) ~ 2.48
    assert 1.5 < losses['loss_ce'].item() < 4.0
    losses['loss_ce'].backward()
    assert head.conv_seg.weight.grad.abs().sum() > 0
    assert head.embed_layers[3].weight.grad.abs().sum() > 0
    head.eval()
    pred = head.predict(list(b0_feats), [s.metainfo for s in samples],
                        test_cfg=dict())
    assert pred.shape == (2, 12, 64, 96)


def test_sep_vs_plain_param_counts():
    sep = MODELS.build(head_cfg())
    plain = MODELS.build(head_cfg(fusion_cfg=dict(sep=False)))
    c_in, c = 4 * 256, 256
    # three dilated branches: 3x3 conv (+BN) vs depthwise 3x3 (+BN) +
    # pointwise 1x1 (+BN); everything else is shared
    dense = c_in * c * 9 + 2 * c
    separable = c_in * 9 + 2 * c_in + c_in * c + 2 * c
    assert n_params(plain) - n_params(sep) == 3 * (dense - separable)
    embed = sum(ci * 256 + 256 for ci in B0_CHANNELS)
    aspp_sep = (c_in * c + 2 * c) + 3 * separable
    bottleneck = 4 * c * c * 9 + 2 * c
    cls = c * 12 + 12
    assert n_params(sep) == embed + aspp_sep + bottleneck + cls
    pooled = MODELS.build(head_cfg(fusion_cfg=dict(pool=True)))
    assert n_params(pooled) - n_params(sep) == \
        (c_in * c + 2 * c) + c * c * 9  # pool branch + wider bottleneck


def test_mit_b5_channels_and_decoder_params():
    head = MODELS.build(head_cfg(
        in_channels=[64, 128, 320, 512],
        decoder_params=dict(
            embed_dims=64,
            embed_cfg=dict(type='mlp', act_cfg=None, norm_cfg=None),
            embed_neck_cfg=dict(type='mlp', act_cfg=None, norm_cfg=None),
            fusion_cfg=dict(type='aspp', sep=True, dilations=(1, 6),
                            pool=False, act_cfg=dict(type='ReLU'),
                            norm_cfg=dict(type='BN')))))
    assert head.embed_dims == [64] * 4
    assert head.fusion_cfg['dilations'] == (1, 6)
    feats = [torch.randn(1, c, 32 // s, 32 // s)
             for c, s in zip([64, 128, 320, 512], [1, 2, 4, 8])]
    head.eval()
    assert head(feats).shape == (1, 12, 32, 32)


def test_registry_from_mmseg_scope_config():
    cfg = Config(dict(default_scope='mmseg', model=head_cfg()))
    init_default_scope(cfg.default_scope)
    head = ROOT_MODELS.build(cfg.model)
    assert type(head).__name__ == 'DAFormerHead'


@pytest.mark.parametrize('kwargs, text', [
    (dict(fusion_cfg=dict(dilations=(1, 0))), r'dilations=\(1, 0\)'),
    (dict(fusion_cfg=dict(bogus=1)), 'bogus'),
    (dict(embed_dims=[64, 64]), r'embed_dims=\[64, 64\]'),
    (dict(in_index=[0, 1]), r'in_index=\[0, 1\]'),
    (dict(in_channels=256), 'in_channels=256'),
    (dict(input_transform='resize_concat'), 'resize_concat'),
])
def test_invalid_parameters(kwargs, text):
    with pytest.raises(ValueError, match=text):
        MODELS.build(head_cfg(**kwargs))
