"""Tiny SYNTHIA / ACDC / Dark Zurich trees in the datasets' own on-disk
layouts, so datasets, converters and configs run without downloads.

Each generator writes a few small images (default 24x40 or 18x32, the
real ones are 760x1280 and 1080x1920) in the layout the download unpacks to
-- *before* the reference's preparation steps -- and returns what it wrote:

* :func:`make_synthia_demo`: ``RGB/NNNNNNN.png`` and ``GT/LABELS/NNNNNNN.png``
  as SYNTHIA's 16-bit, 3-channel label PNGs (class id in the red channel,
  an instance id in the green one). Column ``x`` of image ``i`` holds SYNTHIA
  id ``(x + i) % 23`` (all ids 0..22, 0 = void), the bottom row id 0.
* :func:`make_acdc_demo`: ``rgb_anon/COND/SPLIT/SEQ/*_rgb_anon.png`` for the
  four conditions and train/val/test (plus a ``train_ref`` split, which the
  reference does not use), and ``gt/COND/{train,val}/SEQ/`` with
  ``*_gt_labelTrainIds.png`` (train ids), ``*_gt_labelIds.png`` and
  ``*_gt_labelColor.png`` as ACDC ships them.
* :func:`make_dark_zurich_demo`: ``rgb_anon/train/{day,twilight,night}/SEQ``,
  ``rgb_anon/val/night/SEQ`` and ``gt/val/night/SEQ`` with
  ``*_gt_labelTrainIds.png``.

Train-id labels: row ``y`` of image ``i`` holds train id ``(y + i) % 19``,
the last column 255 (ignore). Same arguments -> identical files.
"""
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np

__all__ = ['make_synthia_demo', 'make_acdc_demo', 'make_dark_zurich_demo',
           'demo_train_ids']


def _rgb(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path, arr):
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, arr):
        raise OSError(f'cannot write {path}')


def demo_train_ids(i: int, h: int, w: int) -> np.ndarray:
    """The train-id label of demo image ``i`` (uint8 ``h x w``)."""
    label = ((np.arange(h)[:, None] + i) % 19).repeat(w, 1).astype(np.uint8)
    label[:, -1] = 255
    return label


def make_synthia_demo(root: str, num: int = 3, height: int = 24,
                      width: int = 40, seed: int = 0) -> Dict[str, List]:
    """SYNTHIA-RAND-CITYSCAPES layout (before conversion) under ``root``.

    Returns:
        dict: ``images`` and ``labels`` (paths) and ``ids`` (the SYNTHIA id
        maps, uint16).
    """
    rng = np.random.default_rng(seed)
    out = dict(images=[], labels=[], ids=[])
    for i in range(num):
        name = f'{i:07d}.png'
        img = osp.join(root, 'RGB', name)
        _write(img, _rgb(rng, height, width))
        ids = ((np.arange(width)[None, :] + i) % 23).repeat(height, 0)
        ids[-1, :] = 0
        ids = ids.astype(np.uint16)
        lbl = np.zeros((height, width, 3), np.uint16)  # BGR in cv2
        lbl[:, :, 2] = ids                             # red: class id
        lbl[:, :, 1] = 1000 + i                        # green: instance
        path = osp.join(root, 'GT', 'LABELS', name)
        _write(path, lbl)
        out['images'].append(img)
        out['labels'].append(path)
        out['ids'].append(ids)
    return out


ACDC_SEQS = {'fog': 'GOPR0475', 'night': 'GOPR0351', 'rain': 'GOPR0400',
             'snow': 'GOPR0122'}


def make_acdc_demo(root: str, per_split: int = 1, height: int = 18,
                   width: int = 32, seed: int = 0) -> Dict[str, List]:
    """ACDC as downloaded (per condition, split and sequence) under
    ``root``.

    Returns:
        dict: ``{split: [image paths]}`` for train/val/test and
        ``labels_<split>`` for train/val (the train-id maps).
    """
    from mmplugins.datasets.acdc import ACDC_CONDITIONS
    rng = np.random.default_rng(seed)
    out = {}
    k = 0
    for cond in ACDC_CONDITIONS:
        seq = ACDC_SEQS[cond]
        for split in ('train', 'val', 'test', 'train_ref'):
            for j in range(per_split):
                stem = f'{seq}_frame_{k:06d}'
                k += 1
                img = osp.join(root, 'rgb_anon', cond, split, seq,
                               f'{stem}_rgb_anon.png')
                _write(img, _rgb(rng, height, width))
                out.setdefault(split, []).append(img)
                if split not in ('train', 'val'):
                    continue
                gt_dir = osp.join(root, 'gt', cond, split, seq)
                train_ids = demo_train_ids(k, height, width)
                lbl = osp.join(gt_dir, f'{stem}_gt_labelTrainIds.png')
                _write(lbl, train_ids)
                # label ids and colours, which the reference leaves behind
                _write(osp.join(gt_dir, f'{stem}_gt_labelIds.png'),
                       np.full((height, width), 7, np.uint8))
                _write(osp.join(gt_dir, f'{stem}_gt_labelColor.png'),
                       _rgb(rng, height, width))
                out.setdefault(f'labels_{split}', []).append(lbl)
    return out


def make_dark_zurich_demo(root: str, per_folder: int = 2, height: int = 18,
                          width: int = 32, seed: int = 0) -> Dict[str, List]:
    """Dark Zurich (train + val archives) under ``root``.

    Returns:
        dict: ``train_<time>`` and ``val`` image paths, ``val_labels``.
    """
    rng = np.random.default_rng(seed)
    out = {}
    k = 0
    for time, seq in (('day', 'GOPR0348'), ('twilight', 'GOPR0354'),
                      ('night', 'GOPR0355')):
        for _ in range(per_folder):
            img = osp.join(root, 'rgb_anon', 'train', time, seq,
                           f'{seq}_frame_{k:06d}_rgb_anon.png')
            k += 1
            _write(img, _rgb(rng, height, width))
            out.setdefault(f'train_{time}', []).append(img)
    seq = 'GOPR0356'
    for j in range(per_folder):
        stem = f'{seq}_frame_{j:06d}'
        img = osp.join(root, 'rgb_anon', 'val', 'night', seq,
                       f'{stem}_rgb_anon.png')
        _write(img, _rgb(rng, height, width))
        lbl = osp.join(root, 'gt', 'val', 'night', seq,
                       f'{stem}_gt_labelTrainIds.png')
        _write(lbl, demo_train_ids(j, height, width))
        _write(osp.join(root, 'gt', 'val', 'night', seq,
                        f'{stem}_gt_labelIds.png'),
               np.full((height, width), 7, np.uint8))
        out.setdefault('val', []).append(img)
        out.setdefault('val_labels', []).append(lbl)
    return out
