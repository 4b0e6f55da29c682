"""Synchronized crop of a (source, target) pair (HRDA's ``sync_crop_size``).

The reference (lhoyer/HRDA ``UDADataset.synchronized_crop``) crops the
source and the target sample *after* their pipelines at the SAME random box:
with small crops, independent crops give ClassMix source and target regions
whose layouts do not match (HRDA paper: the 256 / 384 / 512 crop ablations,
and the ACDC / Dark Zurich HRDA configs). The box is drawn uniformly from
the source sample's size (``randint(0, H - h + 1)``, likewise for the
width); a sample smaller than the crop keeps its full extent on that side,
as the reference's slicing does. The rare-class-sampling retries have run
before it, on the pipeline's own crop, as in the reference.

Everything spatial is cropped: the packed image tensors (``inputs`` and any
other ``*inputs`` key, e.g. the dual branch's) and every ``PixelData`` field
of the data samples (``gt_sem_seg``, ``valid_pseudo_mask``, ...); their
``img_shape`` (and ``pad_shape``) follow.
"""
from typing import Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import BaseDataElement, PixelData


def check_sync_crop_size(size) -> Tuple[int, int]:
    """``(h, w)`` of two positive ints (a single int means a square)."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0
            for v in size)):
        raise ValueError('UDADataset: sync_crop_size must be (h, w) positive '
                         f'ints, but got sync_crop_size={size!r}')
    return int(size[0]), int(size[1])


def crop_box(shape: Sequence[int], size: Tuple[int, int],
             rng: np.random.Generator) -> Tuple[int, int, int, int]:
    """(y1, y2, x1, x2) of a uniformly drawn ``size`` box in ``shape``."""
    h, w = shape
    y1 = int(rng.integers(0, max(h - size[0], 0) + 1))
    x1 = int(rng.integers(0, max(w - size[1], 0) + 1))
    return y1, y1 + size[0], x1, x1 + size[1]


def _crop_sample(sample: BaseDataElement, box) -> None:
    y1, y2, x1, x2 = box
    for key in list(sample.keys()):
        value = getattr(sample, key)
        if isinstance(value, PixelData):
            cropped = PixelData(metainfo=value.metainfo)
            for field in value.keys():
                cropped.set_field(getattr(value, field)[..., y1:y2, x1:x2],
                                  field)
            setattr(sample, key, cropped)
    meta = {}
    for k in ('img_shape', 'pad_shape'):
        if k in sample.metainfo:
            h, w = sample.metainfo[k][:2]
            meta[k] = (min(y2, h) - y1, min(x2, w) - x1)
    if meta:
        sample.set_metainfo(meta)


def synchronized_crop(item: dict, size: Tuple[int, int],
                      rng: np.random.Generator) -> Tuple[dict, tuple]:
    """Crop every image tensor and data sample of a UDADataset item (source
    keys and ``target_``-prefixed keys) at one random box.

    Returns:
        (dict, tuple): The cropped item and the box ``(y1, y2, x1, x2)``.
    """
    if not torch.is_tensor(item.get('inputs')):
        raise TypeError('sync_crop_size: the source pipeline must end in a '
                        "packer giving 'inputs' (PackSegInputs)")
    box = crop_box(item['inputs'].shape[-2:], size, rng)
    y1, y2, x1, x2 = box
    out = dict(item)
    for key, value in item.items():
        if key.endswith('inputs') and torch.is_tensor(value):
            out[key] = value[..., y1:y2, x1:x2].contiguous()
        elif isinstance(value, BaseDataElement):
            value = value.clone()
            _crop_sample(value, box)
            out[key] = value
    return out, box
