"""Fisheye lens simulation as a batched op on the training device.

The device twin of :class:`~mmplugins.datasets.transforms.fisheye
.FisheyeDistortion`: same arguments, same parameter draw
(:meth:`FisheyeDistortion.draw_params`, quantised to ``levels`` values),
same maps (:func:`~mmplugins.datasets.transforms.fisheye.fisheye_maps`,
built once per ``(h, w, params)`` and kept on the device). Images are
sampled bilinearly, labels by rounding the map exactly as the CPU transform
does (``np.rint`` = half to even), so the label maps are identical and the
images agree within interpolation tolerance (OpenCV's fixed-point maps).
"""
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmplugins.datasets.transforms.fisheye import (FisheyeDistortion,
                                                   fisheye_maps)
from .batch_warp import gather_nearest, round_half_even, sample_bilinear


class BatchFisheyeDistortion:
    """Warp a batch with the fisheye lens model, on the batch's device.

    Args:
        **kwargs: The arguments of :class:`FisheyeDistortion` (``strength``,
            ``focal_scale``, ``k``, ``circle_radius``, ``prob``,
            ``img_fill``, ``seg_fill``, ``levels``, ``cache_size``), same
            defaults, validated by it. ``img_fill`` must be a number here
            (one value for all channels).

    Note:
        Randomness: :meth:`get_params` draws from the global ``np.random``
        (the prob coin and the strength / focal levels), as the CPU
        transform does.
    """

    def __init__(self, **kwargs):
        self.cpu = FisheyeDistortion(**kwargs)
        if not isinstance(self.cpu.img_fill, (int, float)):
            raise ValueError(
                'BatchFisheyeDistortion: img_fill must be one number on the '
                f'device, but got img_fill={self.cpu.img_fill!r}; keep '
                "dict(type='FisheyeDistortion', ...) in the CPU pipeline for "
                'per-channel fills')
        self._maps: 'OrderedDict[tuple, tuple]' = OrderedDict()

    @property
    def img_fill(self) -> float:
        return float(self.cpu.img_fill)

    @property
    def seg_fill(self) -> int:
        return self.cpu.seg_fill

    def get_params(self, n: int) -> List[Optional[dict]]:
        """Per-sample parameters (None = not warped, the ``prob`` coin)."""
        out = []
        for _ in range(n):
            if self.cpu.prob < 1 and np.random.rand() >= self.cpu.prob:
                out.append(None)
            else:
                out.append(self.cpu.draw_params())
        return out

    def maps(self, h: int, w: int, params: dict, device) -> Tuple:
        """``(map_x, map_y, ix, iy, valid)`` on ``device`` (cached)."""
        key = (h, w, params['strength'], params['focal_scale'], params['k'],
               params['circle_radius'], str(device))
        hit = self._maps.get(key)
        if hit is not None:
            self._maps.move_to_end(key)
            return hit
        map_x, map_y, valid = fisheye_maps(h, w, **params)
        mx = torch.from_numpy(map_x).to(device)
        my = torch.from_numpy(map_y).to(device)
        entry = (mx, my, round_half_even(mx).long(),
                 round_half_even(my).long(),
                 torch.from_numpy(valid).to(device))
        self._maps[key] = entry
        if len(self._maps) > self.cpu.cache_size:
            self._maps.popitem(last=False)
        return entry

    def apply(self, img: torch.Tensor, seg: Optional[torch.Tensor],
              params: Sequence[Optional[dict]]
              ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Warp ``img`` ``(N, C, H, W)`` float and ``seg`` ``(N, H, W)``
        with per-sample ``params`` (new tensors; None entries unchanged)."""
        n, _, h, w = img.shape
        img = img.clone()
        seg = None if seg is None else seg.clone()
        groups = OrderedDict()
        for i, p in enumerate(params):
            if p is not None:
                key = (p['strength'], p['focal_scale'], p['k'],
                       p['circle_radius'])
                groups.setdefault(key, (p, []))[1].append(i)
        for p, idx in groups.values():
            mx, my, ix, iy, valid = self.maps(h, w, p, img.device)
            k = len(idx)
            sel = torch.as_tensor(idx, device=img.device)
            out = sample_bilinear(img[sel], mx.expand(k, h, w),
                                  my.expand(k, h, w), self.img_fill)
            out = torch.where(valid, out, torch.full_like(out,
                                                          self.img_fill))
            img[sel] = out
            if seg is not None:
                s = gather_nearest(seg[sel], ix.expand(k, h, w),
                                   iy.expand(k, h, w), self.seg_fill)
                seg[sel] = torch.where(valid, s,
                                       torch.full_like(s, self.seg_fill))
        return img, seg

    def __call__(self, img, seg=None):
        return self.apply(img, seg, self.get_params(img.shape[0]))

    def __repr__(self) -> str:
        return f'Batch{self.cpu!r}'


__all__ = ['BatchFisheyeDistortion']
