"""Fixtures of the segmentation-components tests (tiny, CPU, seeded)."""
import os.path as osp

import cv2
import numpy as np
import pytest

#: mmseg MiT-B0 (SegFormer-B0 backbone), random init, no download.
MIT_B0 = dict(
    type='MixVisionTransformer',
    in_channels=3,
    embed_dims=32,
    num_stages=4,
    num_layers=[2, 2, 2, 2],
    num_heads=[1, 2, 5, 8],
    patch_sizes=[7, 3, 3, 3],
    sr_ratios=[8, 4, 2, 1],
    out_indices=(0, 1, 2, 3),
    mlp_ratio=4,
    qkv_bias=True,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.1,
    init_cfg=None)
MIT_B0_CHANNELS = [32, 64, 160, 256]
NUM_CLASSES = 12


@pytest.fixture(scope='session')
def mit_b0_cfg():
    return dict(MIT_B0)


@pytest.fixture
def toy_pair():
    """(img bgr uint8 HxWx3, label uint8 HxW) with ids {0, 3, 7, 11}."""
    h, w = 64, 96
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([(xs * 2) % 256, (ys * 3) % 256, (xs + ys) % 256],
                   -1).astype(np.uint8)
    seg = np.zeros((h, w), np.uint8)
    seg[:, w // 2:] = 3
    seg[h // 2:, :w // 3] = 7
    seg[h // 4:h // 2, w // 4:w // 2] = 11
    return img, seg


@pytest.fixture
def toy_files(tmp_path, toy_pair):
    """The toy pair written as PNGs, plus a folder of 2 target images."""
    img, seg = toy_pair
    img_path = osp.join(tmp_path, 'img.png')
    seg_path = osp.join(tmp_path, 'seg.png')
    cv2.imwrite(img_path, img)
    cv2.imwrite(seg_path, seg)
    target_dir = tmp_path / 'target'
    target_dir.mkdir()
    for i, color in enumerate([(0, 0, 200), (0, 200, 0)]):
        cv2.imwrite(str(target_dir / f'T_{i}.png'),
                    np.full((40, 80, 3), color, np.uint8))
    return dict(img_path=img_path, seg_map_path=seg_path,
                target_dir=str(target_dir))
