"""Tiny on-disk segmentation data in the demo (Samsung challenge) layout:
the helpers the tests of this folder import (``from _uda_data_fixtures
import ...``; a module name of its own, so it never clashes with another
folder's ``conftest``).

Source labels use 4 classes; class 3 ("rare") sits in a small square of only
a few images, class 2 ("tiny") never reaches a useful pixel count.
"""
import os
import os.path as osp

import cv2
import numpy as np

CLASSES = ('road', 'sky', 'tiny', 'rare')
PALETTE = [[128, 64, 128], [70, 130, 180], [0, 0, 142], [220, 20, 60]]
H, W = 64, 96
RARE_IMAGES = (1, 4)   # source images holding the rare class
RARE_BOX = (4, 20, 70, 86)  # y0, y1, x0, x1: 16x16 = 256 px in a corner


def source_label(i):
    """Label map of source image i (uint8, H x W)."""
    label = np.zeros((H, W), np.uint8)      # road
    label[:H // 3] = 1                      # sky
    label[-4:, :8] = 255                    # ignored corner
    if i % 3 == 0:
        label[30:32, 40:42] = 2             # 4 px of 'tiny'
    if i in RARE_IMAGES:
        y0, y1, x0, x1 = RARE_BOX
        label[y0:y1, x0:x1] = 3
    return label


def write_split(root, split, n, labelled=True, prefix=None):
    prefix = prefix or split.upper()
    img_dir = osp.join(root, f'{split}_image')
    os.makedirs(img_dir, exist_ok=True)
    if labelled:
        os.makedirs(osp.join(root, f'{split}_gt'), exist_ok=True)
    rng = np.random.default_rng(len(split) + n)
    for i in range(n):
        name = f'{prefix}_{i:04d}.png'
        img = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        cv2.imwrite(osp.join(img_dir, name), img)
        if labelled:
            cv2.imwrite(osp.join(root, f'{split}_gt', name), source_label(i))


# mmengine's serialisation runs gc.collect() (~1 s per dataset in a big test
# process); the tests build many small datasets
FAST = dict(serialize_data=False)


def source_cfg(root, pipeline=None, crop=None, **kwargs):
    if pipeline is None:
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
        ]
        if crop:
            pipeline.append(dict(type='RandomCrop', crop_size=crop))
        pipeline.append(dict(type='PackSegInputs'))
    return dict(
        type='BaseSegDataset', data_root=root,
        data_prefix=dict(img_path='train_source_image',
                         seg_map_path='train_source_gt'),
        img_suffix='.png', seg_map_suffix='.png',
        metainfo=dict(classes=CLASSES, palette=PALETTE),
        pipeline=pipeline, **dict(FAST, **kwargs))


def target_cfg(root, classes=CLASSES, img_dir='train_target_image'):
    return dict(
        type='BaseSegDataset', data_root=root,
        data_prefix=dict(img_path=img_dir),
        img_suffix='.png',
        metainfo=dict(classes=classes, palette=PALETTE[:len(classes)]),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackSegInputs')], **FAST)
