"""DualBranchAug + PackDualBranchSegInputs, alone and in an mmseg pipeline."""
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope
from mmseg.registry import TRANSFORMS

import mmplugins  # noqa: F401
from mmplugins.datasets.transforms.dual_branch import (DualBranchAug,
                                                       ellipse_mask)


def _run(t, toy_pair, seed):
    img, seg = toy_pair
    np.random.seed(seed)
    return t(dict(img=img.copy(), gt_seg_map=seg.copy()))


def test_views_same_size_labels_nearest(toy_pair):
    img, seg = toy_pair
    t = DualBranchAug(
        affine=dict(scale=(0.8, 1.2), rotate=(-20, 20), shear=(-8, 8),
                    translate_percent=(-0.1, 0.1)),
        elastic=dict(alpha=60, sigma=6))
    for seed in range(4):
        out = _run(t, toy_pair, seed)
        assert out['dist_img'].shape == img.shape
        assert out['dist_img'].dtype == np.uint8
        assert out['dist_gt_seg_map'].shape == seg.shape
        assert out['dist_gt_seg_map'].dtype == np.uint8
        ids = set(np.unique(out['dist_gt_seg_map']))
        assert ids <= {0, 3, 7, 11, 255}
        # the view really is distorted, the undistorted one untouched
        assert (out['dist_gt_seg_map'] != seg).mean() > 0.02
        np.testing.assert_array_equal(out['img'], img)
        np.testing.assert_array_equal(out['gt_seg_map'], seg)


def test_deterministic_for_seed(toy_pair):
    t = DualBranchAug(fisheye=dict(strength=(0.2, 0.6)), ellipse_prob=0.5)
    a, b, c = (_run(t, toy_pair, s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a['dist_img'], b['dist_img'])
    np.testing.assert_array_equal(a['dist_gt_seg_map'], b['dist_gt_seg_map'])
    assert a['dist_params'] == b['dist_params']
    assert not np.array_equal(a['dist_img'], c['dist_img'])


def test_identity_when_everything_off(toy_pair):
    img, seg = toy_pair
    out = _run(DualBranchAug(affine=None, elastic=None), toy_pair, 0)
    np.testing.assert_array_equal(out['dist_img'], img)
    np.testing.assert_array_equal(out['dist_gt_seg_map'], seg)
    assert out['dist_img'] is not out['img']


def test_ellipse_mix_with_target(toy_pair, toy_files):
    img, seg = toy_pair
    t = DualBranchAug(affine=None, elastic=None, ellipse_prob=1.0,
                      ellipse_axes=((0.8, 0.8), (0.9, 0.9)),
                      target_img_dir=toy_files['target_dir'])
    out = _run(t, toy_pair, 1)
    inside = ellipse_mask(*seg.shape, (0.8, 0.9))
    assert 0.3 < inside.mean() < 0.9
    dist_img, dist_seg = out['dist_img'], out['dist_gt_seg_map']
    assert (dist_seg[~inside] == 255).all()
    np.testing.assert_array_equal(dist_seg[inside], seg[inside])
    np.testing.assert_array_equal(dist_img[inside], img[inside])
    # outside = the (uniform) target image colour, bgr as LoadImageFromFile
    colours = {tuple(c) for c in dist_img[~inside]}
    assert colours in ({(0, 0, 200)}, {(0, 200, 0)})
    assert out['dist_params']['target_img_path'].startswith(
        toy_files['target_dir'])


def test_missing_label_and_bad_params(toy_pair, tmp_path):
    img, _ = toy_pair
    with pytest.raises(KeyError, match='gt_seg_map'):
        DualBranchAug()(dict(img=img))
    out = DualBranchAug(with_label=False)(dict(img=img))
    assert out['dist_img'].shape == img.shape
    assert 'dist_gt_seg_map' not in out
    with pytest.raises(ValueError, match=r'ellipse_prob=2'):
        DualBranchAug(ellipse_prob=2)
    with pytest.raises(ValueError, match=r'ellipse_axes=\(1.2, 0.9\)'):
        DualBranchAug(ellipse_axes=((1.2, 0.9), (1, 1)))
    with pytest.raises(ValueError, match=r"scale=\(0, 1\)"):
        DualBranchAug(affine=dict(scale=(0, 1)))
    with pytest.raises(ValueError, match=r'rotate=\(10, -10\)'):
        DualBranchAug(affine=dict(rotate=(10, -10)))
    with pytest.raises(ValueError, match=r'sigma=0'):
        DualBranchAug(elastic=dict(alpha=1, sigma=0))
    with pytest.raises(ValueError, match='alpha_affine'):
        DualBranchAug(elastic=dict(alpha=1, sigma=5, alpha_affine=10))
    with pytest.raises(ValueError, match='mask_interpolation'):
        DualBranchAug(affine=dict(mask_interpolation=1))
    with pytest.raises(ValueError, match='strength=-1'):
        DualBranchAug(fisheye=dict(strength=-1))
    missing = str(tmp_path / 'nope')
    with pytest.raises(FileNotFoundError, match='nope'):
        DualBranchAug(target_img_dir=missing)


def test_real_mmseg_pipeline(toy_files):
    """Config dicts -> mmseg TRANSFORMS -> packed dual-branch sample."""
    init_default_scope('mmseg')
    cfgs = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='RandomResize', scale=(96, 64), ratio_range=(1.0, 1.5),
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=(48, 64)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='DualBranchAug',
             affine=dict(rotate=(-15, 15), scale=(0.9, 1.1)),
             elastic=dict(alpha=30, sigma=6),
             fisheye=dict(strength=0.4),
             ellipse_prob=1.0,
             target_img_dir=toy_files['target_dir']),
        dict(type='PackDualBranchSegInputs'),
    ]
    pipeline = Compose([TRANSFORMS.build(cfg) for cfg in cfgs])
    assert type(pipeline.transforms[-2]) is DualBranchAug

    def info():  # fresh dict each time: LoadAnnotations appends seg_fields
        return dict(img_path=toy_files['img_path'],
                    seg_map_path=toy_files['seg_map_path'], seg_fields=[],
                    reduce_zero_label=False)

    np.random.seed(0)
    packed = pipeline(info())
    assert set(packed) == {'inputs', 'data_samples', 'dist_inputs',
                           'dist_data_samples'}
    assert packed['inputs'].shape == (3, 48, 64)
    assert packed['dist_inputs'].shape == (3, 48, 64)
    assert packed['dist_inputs'].dtype == torch.uint8
    gt = packed['data_samples'].gt_sem_seg.data
    dist_gt = packed['dist_data_samples'].gt_sem_seg.data
    assert gt.shape == dist_gt.shape == (1, 48, 64)
    assert set(dist_gt.unique().tolist()) <= {0, 3, 7, 11, 255}
    assert (dist_gt == 255).any() and (dist_gt != 255).any()
    assert packed['dist_data_samples'].metainfo == \
        packed['data_samples'].metainfo
    assert packed['data_samples'].img_shape == (48, 64)
    # same seed, same sample
    np.random.seed(0)
    again = pipeline(info())
    assert torch.equal(again['dist_inputs'], packed['dist_inputs'])
    # the packer alone is PackSegInputs when there is no distortion view
    plain = Compose([dict(type='LoadImageFromFile'),
                     dict(type='LoadAnnotations'),
                     dict(type='PackDualBranchSegInputs')])(info())
    assert set(plain) == {'inputs', 'data_samples'}
