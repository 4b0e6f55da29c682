"""MIC: masked image consistency (Hoyer et al., CVPR 2023).

The student sees the target image with ~``mask_ratio`` of its
``block_size``-pixel blocks zeroed (after a fresh strong augmentation) and is
trained on the EMA teacher's pseudo-labels of the *unmasked* image, so it must
use context to recognise what is hidden. Toggle: ``mic=dict(...)`` in
:class:`~mmplugins.models.uda.UDASegmentor` (``None`` = off).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def block_mask(shape, block_size: int = 32, mask_ratio: float = 0.7,
               device=None,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """Random block mask, 1 = keep, 0 = masked.

    Reference: a (N, 1, round(H/b), round(W/b)) uniform draw, keep where
    ``> mask_ratio`` (so each block is masked with probability
    ``mask_ratio``), nearest-upsampled to (H, W).

    Args:
        shape (tuple): (N, C, H, W) or (N, H, W) of the image batch.
    Returns:
        Tensor: (N, 1, H, W) float mask.
    """
    if block_size < 1:
        raise ValueError(f'mask_block_size must be >= 1, got {block_size}')
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
    n, h, w = shape[0], shape[-2], shape[-1]
    mh, mw = max(round(h / block_size), 1), max(round(w / block_size), 1)
    draw = torch.rand((n, 1, mh, mw), generator=generator)
    keep = (draw > mask_ratio).float()
    keep = F.interpolate(keep, size=(h, w), mode='nearest')
    return keep.to(device) if device is not None else keep


def mask_image(img: Tensor, mask: Tensor) -> Tensor:
    """Zero the masked blocks of a (normalised) batch."""
    return img * mask.to(img.dtype)
