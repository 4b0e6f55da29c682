"""ImageNet feature distance (DAFormer, CVPR 2022).

Regularises the student's bottleneck features of *thing* classes on the
source towards those of a frozen copy of the initial (ImageNet-pretrained)
backbone, so that pretrained knowledge of rare objects survives adaptation.
Toggle: ``imnet_feature_dist_lambda > 0`` in
:class:`~mmplugins.models.uda.UDASegmentor`.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def downscale_label_ratio(gt: Tensor, scale_factor: int, min_ratio: float,
                          num_classes: int,
                          ignore_index: int = 255) -> Tensor:
    """Downscale a label map by ``scale_factor``; a cell keeps its majority
    class only where that class covers >= ``min_ratio`` of it, else ignore.

    Args:
        gt (Tensor): (N, 1, H, W) or (N, H, W) labels.
    Returns:
        Tensor: (N, 1, H/s, W/s) long labels.
    """
    if gt.dim() == 3:
        gt = gt[:, None]
    if scale_factor < 1:
        raise ValueError(f'scale_factor must be >= 1, got {scale_factor}')
    g = gt.clone().long()
    g[g == ignore_index] = num_classes  # extra channel for "ignore"
    onehot = F.one_hot(g[:, 0], num_classes + 1).permute(0, 3, 1, 2).float()
    ratio = F.avg_pool2d(onehot, kernel_size=scale_factor)
    best, label = ratio.max(dim=1, keepdim=True)
    label[label == num_classes] = ignore_index
    label[best < min_ratio] = ignore_index
    return label


def masked_feat_dist(f1: Tensor, f2: Tensor,
                     mask: Optional[Tensor] = None) -> Tensor:
    """Mean L2 distance over channels, over the ``mask``ed positions."""
    diff = torch.norm(f1 - f2, dim=1, p=2)
    if mask is not None:
        diff = diff[mask.squeeze(1)]
    if diff.numel() == 0:  # no thing pixel: contributes nothing
        return f1.sum() * 0
    return diff.mean()


def thing_mask(gt: Tensor, feat: Tensor, thing_classes: Optional[Sequence[int]],
               scale_min_ratio: float, num_classes: int,
               ignore_index: int = 255) -> Optional[Tensor]:
    """(N, 1, h, w) bool mask of feature cells dominated by thing classes."""
    if thing_classes is None:
        return None
    scale = gt.shape[-1] // feat.shape[-1]
    small = downscale_label_ratio(gt, max(scale, 1), scale_min_ratio,
                                  num_classes, ignore_index)
    if small.shape[-2:] != feat.shape[-2:]:
        small = F.interpolate(small.float(), size=feat.shape[-2:],
                              mode='nearest').long()
    classes = torch.as_tensor(list(thing_classes), device=gt.device)
    return torch.isin(small, classes)
