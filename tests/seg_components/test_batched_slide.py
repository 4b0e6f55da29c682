"""Batched slide inference == mmseg's sequential slide inference."""
import copy

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

import mmplugins  # noqa: F401
from mmplugins.models.segmentors.batched_slide import (
    BatchedSlideEncoderDecoder, batched_slide_inference, slide_windows)

CROP, STRIDE = (64, 64), (43, 43)


def model_cfg(mit_b0_cfg, **test_cfg):
    # ConfigDict as the Runner passes it (mmseg reads test_cfg.mode)
    return ConfigDict(
        type='BatchedSlideEncoderDecoder',
        backbone=mit_b0_cfg,
        decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                         in_index=[0, 1, 2, 3], channels=128,
                         dropout_ratio=0.1, num_classes=12,
                         norm_cfg=dict(type='BN', requires_grad=True),
                         align_corners=False),
        test_cfg=dict(mode='slide', crop_size=CROP, stride=STRIDE,
                      **test_cfg))


@pytest.fixture(scope='module')
def model(mit_b0_cfg):
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(mit_b0_cfg, batch_size=3))
    model.init_weights()
    # non-trivial BN statistics, then eval (BN uses running stats)
    with torch.no_grad():
        model.train()
        model.extract_feat(torch.randn(4, 3, 64, 64))
        model.decode_head(model.extract_feat(torch.randn(4, 3, 64, 64)))
    return model.eval()


def metas(n, h, w):
    return [dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w),
                 padding_size=[0, 0, 0, 0]) for _ in range(n)]


def test_windows_match_stock_grid():
    # 100 is not a multiple of the stride: last window shifted to the border
    assert slide_windows(100, 64, CROP, STRIDE) == [(0, 64, 0, 64),
                                                    (36, 100, 0, 64)]
    # image smaller than the crop: one clipped window, no padding
    assert slide_windows(50, 30, CROP, STRIDE) == [(0, 50, 0, 30)]
    assert len(slide_windows(150, 200, CROP, STRIDE)) == 3 * 5


@pytest.mark.parametrize('h, w', [(64, 64), (100, 150), (50, 130)])
def test_equal_to_stock_slide(model, h, w):
    torch.manual_seed(h * w)
    inputs = torch.randn(2, 3, h, w)
    with torch.no_grad():
        stock = EncoderDecoder.slide_inference(model, inputs, metas(2, h, w))
        n_windows = len(slide_windows(h, w, CROP, STRIDE))
        for batch_size in (1, 3, None):
            calls = []

            def encode_decode(crops, crop_metas):
                calls.append(len(crops))
                assert all(m['img_shape'] == crops.shape[2:]
                           for m in crop_metas)
                return model.encode_decode(crops, crop_metas)

            given = metas(2, h, w)
            out = batched_slide_inference(encode_decode, inputs, given,
                                          CROP, STRIDE, 12, batch_size)
            assert out.shape == stock.shape == (2, 12, h, w)
            torch.testing.assert_close(out, stock, atol=1e-5, rtol=1e-5)
            total = 2 * n_windows
            expect = -(-total // (batch_size or total))
            assert len(calls) == expect and sum(calls) == total
            assert given == metas(2, h, w)  # caller's metas untouched


def test_segmentor_predict_matches_encoder_decoder(model, mit_b0_cfg):
    inputs = torch.randn(1, 3, 100, 150)
    stock = MODELS.build(dict(model_cfg(mit_b0_cfg), type='EncoderDecoder'))
    stock.load_state_dict(model.state_dict())
    stock.eval()
    with torch.no_grad():
        a = model.predict(inputs)[0]
        b = stock.predict(inputs)[0]
    torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data,
                               atol=1e-5, rtol=1e-5)
    assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
    # without batch_size the subclass is the stock method
    plain = copy.deepcopy(model)
    plain.test_cfg = ConfigDict(mode='slide', crop_size=CROP,
                                   stride=STRIDE)
    with torch.no_grad():
        c = plain.slide_inference(inputs, metas(1, 100, 150))
    torch.testing.assert_close(c, b.seg_logits.data[None], atol=1e-5,
                               rtol=1e-5)


def test_registry_and_bad_input(mit_b0_cfg):
    cfg = Config(dict(default_scope='mmseg',
                      model=model_cfg(mit_b0_cfg, batch_size=2)))
    init_default_scope('mmseg')
    model = ROOT_MODELS.build(cfg.model)
    assert isinstance(model, BatchedSlideEncoderDecoder)
    with pytest.raises(ValueError, match='batch_size=0'):
        MODELS.build(model_cfg(mit_b0_cfg, batch_size=0))
    fn = model.encode_decode
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r'stride=\(0, 8\)'):
        batched_slide_inference(fn, x, metas(1, 32, 32), CROP, (0, 8), 12)
    with pytest.raises(ValueError, match=r'crop_size=\(-1, 8\)'):
        batched_slide_inference(fn, x, metas(1, 32, 32), (-1, 8), STRIDE, 12)
    with pytest.raises(ValueError, match='batch_size=2.5'):
        batched_slide_inference(fn, x, metas(1, 32, 32), CROP, STRIDE, 12,
                                batch_size=2.5)
    with pytest.raises(ValueError, match='2 entries for 1 images'):
        batched_slide_inference(fn, x, metas(2, 32, 32), CROP, STRIDE, 12)
