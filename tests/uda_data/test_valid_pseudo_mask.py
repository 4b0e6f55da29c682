"""Dataset-level pseudo-label margins (HRDA's ``target.crop_pseudo_margins``).

Every expected mask is built by hand from the margins and the crop offsets
(read back from a coordinate-coded image, or found by matching the packed
crop against the image file), never by running the transform again.
"""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
from _uda_data_fixtures import CLASSES, source_cfg, target_cfg

from mmplugins.datasets.transforms.valid_pseudo_mask import (
    PackValidPseudoMask, ValidPseudoMask)
from mmplugins.datasets.uda_dataset import UDADataset
from mmplugins.models.uda.utils import pseudo_label_and_weight

H, W = 40, 60
MARGINS = [3, 5, 2, 4]  # top, bottom, left, right


def _hand_mask(h, w, top, bottom, left, right):
    m = np.ones((h, w), np.uint8)
    m[:top] = 0
    m[h - bottom:] = 0
    m[:, :left] = 0
    m[:, w - right:] = 0
    return m


def _results(h=H, w=W, margins=MARGINS):
    """A loaded image whose channels 0/1 hold the pixel's row/column."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(h)[:, None]
    img[..., 1] = np.arange(w)[None, :]
    res = dict(img=img, img_path='full.png', img_shape=(h, w),
               ori_shape=(h, w), seg_fields=[])
    return ValidPseudoMask(margins)(res)


def _build(cfg):
    from mmseg.registry import TRANSFORMS
    return TRANSFORMS.build(cfg)


def test_mask_on_the_full_image_is_a_label_field():
    res = _results()
    np.testing.assert_array_equal(res['valid_pseudo_mask'],
                                  _hand_mask(H, W, 3, 5, 2, 4))
    assert res['valid_pseudo_mask'].dtype == np.uint8
    assert res['seg_fields'] == ['valid_pseudo_mask']


def test_horizontal_flip_swaps_left_and_right_margins():
    res = _build(dict(type='RandomFlip', prob=1.0))(_results())
    assert res['flip_direction'] == 'horizontal'
    np.testing.assert_array_equal(res['valid_pseudo_mask'],
                                  _hand_mask(H, W, 3, 5, 4, 2))


def test_random_crop_masks_margins_only_where_the_crop_touches_the_border():
    crop_h, crop_w = 24, 40
    seen_top, seen_inner = False, False
    for seed in range(12):
        res = _results()
        # a label with 6 column classes: cat_max_ratio is checked on it
        res['gt_seg_map'] = (np.arange(W)[None, :] // 10).repeat(H, 0) \
            .astype(np.uint8)
        res['seg_fields'].append('gt_seg_map')
        np.random.seed(seed)
        res = _build(dict(type='RandomCrop', crop_size=(crop_h, crop_w),
                          cat_max_ratio=0.75))(res)
        y0, x0 = int(res['img'][0, 0, 0]), int(res['img'][0, 0, 1])
        # the crop's margins by hand: what is left of each image margin
        top = max(0, 3 - y0)
        bottom = max(0, 5 - (H - y0 - crop_h))
        left = max(0, 2 - x0)
        right = max(0, 4 - (W - x0 - crop_w))
        np.testing.assert_array_equal(
            res['valid_pseudo_mask'],
            _hand_mask(crop_h, crop_w, top, bottom, left, right))
        # same box for the label
        np.testing.assert_array_equal(
            res['gt_seg_map'][0], (np.arange(x0, x0 + crop_w) // 10))
        seen_top |= top > 0
        seen_inner |= top == bottom == left == right == 0
    assert seen_top and seen_inner  # both cases drawn


@pytest.mark.parametrize('cfg', [
    dict(type='Resize', scale=(30, 20), keep_ratio=False),
    dict(type='RandomResize', scale=(60, 40), ratio_range=(0.5, 0.5),
         keep_ratio=True),
])
def test_resize_halves_the_margins(cfg):
    res = _build(cfg)(_results(margins=[4, 6, 2, 8]))
    assert res['img'].shape[:2] == (20, 30)
    np.testing.assert_array_equal(res['valid_pseudo_mask'],
                                  _hand_mask(20, 30, 2, 3, 1, 4))


def test_pack_pads_like_mmcv_pad_and_only_1_is_valid():
    res = _build(dict(type='Pad', size=(64, 48)))(_results())
    assert res['img'].shape[:2] == (48, 64)
    assert res['valid_pseudo_mask'].shape == (H, W)  # mmcv Pad skips it
    res['valid_pseudo_mask'][10, 10] = 255  # a transform's fill value
    packed = PackValidPseudoMask()(res)
    got = packed['data_samples'].valid_pseudo_mask.data
    assert got.shape == (1, 48, 64) and got.dtype == torch.uint8
    exp = np.zeros((48, 64), np.uint8)
    exp[:H, :W] = _hand_mask(H, W, 3, 5, 2, 4)
    exp[10, 10] = 0
    np.testing.assert_array_equal(got[0].numpy(), exp)
    assert packed['inputs'].shape == (3, 48, 64)


@pytest.mark.parametrize('margins', [[1, 2, 3], [1, 2, 3, -1],
                                     [1, 2.0, 3, 4], [True, 0, 0, 0], 5])
def test_bad_margins_are_rejected_naming_the_key(demo_root, margins):
    with pytest.raises(ValueError, match=r'target\.crop_pseudo_margins must '
                       r'be 4 non-negative ints'):
        UDADataset(source=source_cfg(demo_root),
                   target=dict(target_cfg(demo_root),
                               crop_pseudo_margins=margins), seed=0)
    with pytest.raises(ValueError, match='crop_pseudo_margins must be 4'):
        ValidPseudoMask(margins)


def test_margins_covering_the_image_name_the_key_and_the_file(demo_root):
    ds = UDADataset(source=source_cfg(demo_root),
                    target=dict(target_cfg(demo_root),
                                crop_pseudo_margins=[0, 0, 50, 46]), seed=0)
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert 'crop_pseudo_margins=[0, 0, 50, 46]' in msg
    assert 'TRAIN_TARGET_' in msg and '64x96' in msg


def test_pipeline_errors(demo_root):
    with pytest.raises(ValueError, match='key of the target dataset'):
        UDADataset(source=source_cfg(demo_root, crop_pseudo_margins=[1] * 4),
                   target=target_cfg(demo_root), seed=0)
    tgt = target_cfg(demo_root)
    tgt['pipeline'].insert(1, dict(type='ValidPseudoMask', margins=[1] * 4))
    with pytest.raises(ValueError, match='does not pack it'):
        UDADataset(source=source_cfg(demo_root), target=tgt, seed=0)
    with pytest.raises(ValueError, match='not both'):
        UDADataset(source=source_cfg(demo_root),
                   target=dict(tgt, crop_pseudo_margins=[1] * 4), seed=0)


def test_pseudo_weight_ignore_rows_cannot_combine_with_the_mask():
    logits = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match='cannot be combined'):
        pseudo_label_and_weight(logits, 0.0, ignore_top=1,
                                valid_mask=torch.ones(1, 4, 4))


# ------------------------------------------------------------- end to end
sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'uda'))


def _crop_offset(crop, full):
    """(y0, x0) of ``crop`` (HxWx3) inside ``full``: the noise images make
    the match unique."""
    ch, cw = crop.shape[:2]
    hits = [(y, x) for y in range(full.shape[0] - ch + 1)
            for x in range(full.shape[1] - cw + 1)
            if np.array_equal(full[y:y + ch, x:x + cw], crop)]
    assert len(hits) == 1
    return hits[0]


def test_uda_batch_pseudo_weight_is_zero_exactly_outside_the_mask(demo_root):
    from _tiny import student_cfg
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS

    # demo images are 64x96; the target crop is narrower than the batch
    # (32x64) so the preprocessor pads it: padded columns must be invalid
    tgt = dict(target_cfg(demo_root), crop_pseudo_margins=MARGINS)
    tgt['pipeline'] = [dict(type='LoadImageFromFile'),
                       dict(type='RandomCrop', crop_size=(32, 56)),
                       dict(type='PackSegInputs')]
    ds = UDADataset(source=source_cfg(demo_root, crop=(32, 64)), target=tgt,
                    seed=0)
    np.random.seed(1)
    items = [ds[0], ds[1]]
    assert 'valid_pseudo_mask' not in items[0]['data_samples']
    expected = []
    for it in items:
        sample = it['target_data_samples']
        full = cv2.imread(sample.img_path)
        assert full.shape[:2] == (64, 96)
        crop = it['target_inputs'].permute(1, 2, 0).numpy()
        y0, x0 = _crop_offset(crop, full)
        exp = np.zeros((32, 64), bool)
        exp[:, :56] = _hand_mask(64, 96, *MARGINS)[y0:y0 + 32, x0:x0 + 56]
        expected.append(exp)
    expected = torch.from_numpy(np.stack(expected))
    assert not expected.all() and expected.any()

    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='UDASegmentor', segmentor=student_cfg(), pseudo_threshold=0.0,
        mask_lambda=1.0, mask_mode='separatetrg', mask_alpha=0.9,
        mask_block_size=8, color_jitter_prob=0.0, blur=False))
    model.init_weights()
    model.train()
    batch = pseudo_collate(items)
    data = model.data_preprocessor(batch, True)
    assert torch.equal(data['target_valid_pseudo_mask'], expected)

    calls = []
    orig = model._pseudo_labels

    def record(*args, **kwargs):
        out = orig(*args, **kwargs)
        calls.append(out)
        return out

    model._pseudo_labels = record
    optim = build_optim_wrapper(
        model, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.)))
    log = model.train_step(pseudo_collate(items), optim)
    assert torch.isfinite(log['loss'])
    assert len(calls) == 2  # the main teacher and MIC's own teacher
    for _, weight, scalar in calls:
        assert scalar == 1.0  # threshold 0: every pixel is confident
        assert torch.equal(weight, expected.float())


def test_model_level_crop_pseudo_margins_points_to_the_dataset():
    from _tiny import student_cfg
    from mmseg.registry import MODELS
    with pytest.raises(ValueError,
                       match=r'train_dataloader\.dataset\.target\.'
                       r'crop_pseudo_margins=\[8, 0, 0, 0\]'):
        MODELS.build(dict(type='UDASegmentor', segmentor=student_cfg(),
                          crop_pseudo_margins=[8, 0, 0, 0]))


def test_item_carries_the_full_image_mask(demo_root):
    ds = UDADataset(source=source_cfg(demo_root),
                    target=dict(target_cfg(demo_root),
                                crop_pseudo_margins=MARGINS), seed=0)
    sample = ds[0]['target_data_samples']
    np.testing.assert_array_equal(sample.valid_pseudo_mask.data[0].numpy(),
                                  _hand_mask(64, 96, *MARGINS))
    assert ds.metainfo["classes"] == CLASSES
