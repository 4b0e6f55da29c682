"""Batched warps on the training device that match OpenCV's sampling.

The CPU augmentations (albumentations ``Affine`` / ``ElasticTransform``,
:class:`~mmplugins.datasets.transforms.fisheye.FisheyeDistortion`) resample
with OpenCV. These functions do the same resampling as batched tensor ops
on whatever device the batch is on:

* **labels** (nearest): the source pixel is chosen with OpenCV's own
  arithmetic, so the label maps are *identical* to the CPU path for the same
  warp parameters: ``cv2.warpAffine`` rounds the float64 inverse map
  (:func:`affine_nearest_coords`), ``cv2.remap`` with float32 maps rounds
  half to even (:func:`round_half_even`). Out-of-image pixels get the fill
  label (255 = ignored). Tested bit-exact against albumentations 2.0.8 on
  OpenCV 5.1.0.95, the versions pinned in ``requirements/runtime.txt``
  (OpenCV 4.x rounds differently, see :func:`affine_nearest_coords`).
* **images** (bilinear): ``torch.nn.functional.grid_sample`` at the exact
  coordinates. OpenCV quantises the sub-pixel position to 1/32 pixel and
  rounds to uint8, so the two differ by <= 0.5 + ~1/32 of the local
  intensity step (the interpolation tolerance the tests use). Pixels whose bilinear taps leave
  the image blend in the fill value, as with ``BORDER_CONSTANT``.

Everything takes ``(N, C, H, W)`` float images and ``(N, H, W)`` integer
label maps; coordinates are in pixels (pixel centres at integers, as in
OpenCV).
"""
from typing import Tuple

import torch
import torch.nn.functional as F

def round_half_even(x: torch.Tensor) -> torch.Tensor:
    """``cvRound``: round to nearest, ties to even (``torch.round``)."""
    return torch.round(x)


def invert_affine(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of ``(N, 2|3, 3)`` forward affine matrices, as
    ``cv2.invertAffineTransform`` computes it (float64), ``(N, 2, 3)``."""
    m = matrix.to(torch.float64)
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * e - b * d
    det = torch.where(det != 0, 1.0 / det, torch.zeros_like(det))
    a11, a22 = e * det, a * det
    a12, a21 = -b * det, -d * det
    b1 = -a11 * c - a12 * f
    b2 = -a21 * c - a22 * f
    return torch.stack([torch.stack([a11, a12, b1], -1),
                        torch.stack([a21, a22, b2], -1)], 1)


def affine_nearest_coords(inverse: torch.Tensor, h: int, w: int
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Integer source pixel of every output pixel, as ``cv2.warpAffine``
    with ``INTER_NEAREST`` picks it: the exact float64 source coordinate,
    rounded (OpenCV 5.x; 5.1.0.95 is pinned in ``requirements/runtime.txt``;
    OpenCV 4.x rounded a 10-bit fixed-point map instead, which differs on a
    few pixels per image).

    Args:
        inverse (Tensor): ``(N, 2, 3)`` inverse maps (:func:`invert_affine`).
        h, w (int): Output size.

    Returns:
        tuple[Tensor, Tensor]: ``(N, H, W)`` int64 source x and y.
    """
    sx, sy = affine_sample_coords(inverse, h, w)
    return round_half_even(sx).long(), round_half_even(sy).long()


def affine_sample_coords(inverse: torch.Tensor, h: int, w: int
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact (float) source coordinates of an affine warp, ``(N, H, W)``."""
    inv = inverse.to(torch.float64)
    dev = inv.device
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float64),
                            torch.arange(w, device=dev, dtype=torch.float64),
                            indexing='ij')
    sx = inv[:, 0, 0, None, None] * xs + inv[:, 0, 1, None, None] * ys + \
        inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * xs + inv[:, 1, 1, None, None] * ys + \
        inv[:, 1, 2, None, None]
    return sx, sy


def sample_bilinear(img: torch.Tensor, map_x: torch.Tensor,
                    map_y: torch.Tensor, fill: float = 0.) -> torch.Tensor:
    """Bilinear ``img`` at source pixel coordinates ``(map_x, map_y)``.

    Args:
        img (Tensor): ``(N, C, H, W)`` float.
        map_x, map_y (Tensor): ``(N, H', W')`` source coordinates in pixels.
        fill (float): Value outside the image (blended into taps that leave
            it, as OpenCV's ``BORDER_CONSTANT``).

    Returns:
        Tensor: ``(N, C, H', W')`` in ``img``'s dtype.
    """
    n, _, h, w = img.shape
    # align_corners=True: -1 / +1 are the centres of the corner pixels
    gx = map_x.to(img.dtype) * (2.0 / max(w - 1, 1)) - 1.0
    gy = map_y.to(img.dtype) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], -1)
    if fill == 0:
        return F.grid_sample(img, grid, mode='bilinear',
                             padding_mode='zeros', align_corners=True)
    # zero padding blends 0 into outside taps: shift so that 0 means fill
    out = F.grid_sample(img - fill, grid, mode='bilinear',
                        padding_mode='zeros', align_corners=True)
    return out + fill


def gather_nearest(seg: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor,
                   fill: int = 255) -> torch.Tensor:
    """``seg[n, iy, ix]`` with ``fill`` where ``(ix, iy)`` is outside.

    Args:
        seg (Tensor): ``(N, H, W)`` label maps (any integer dtype).
        ix, iy (Tensor): ``(N, H', W')`` integer source pixels.
        fill (int): Label outside the image.

    Returns:
        Tensor: ``(N, H', W')`` of ``seg``'s dtype.
    """
    n, h, w = seg.shape
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    flat = (iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)).view(n, -1)
    out = torch.gather(seg.reshape(n, -1), 1, flat).view(ix.shape)
    return torch.where(inside, out, torch.full_like(out, fill))


def gaussian_kernel1d(sigma: float, ksize: int, device=None,
                      dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian (``cv2.getGaussianKernel``)."""
    x = torch.arange(ksize, device=device, dtype=torch.float64) - \
        (ksize - 1) / 2.
    k = torch.exp(-x * x / (2. * sigma * sigma))
    return (k / k.sum()).to(dtype)


def cv2_auto_ksize(sigma: float) -> int:
    """Kernel size ``cv2.GaussianBlur`` picks for ``ksize=(0, 0)`` on a
    float image: ``cvRound(sigma * 4 * 2 + 1) | 1``."""
    return int(round(sigma * 8 + 1)) | 1


def gaussian_blur_replicate(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, H, W)`` maps with replicated
    borders, the kernel ``cv2.GaussianBlur(x, (0, 0), sigma)`` uses."""
    ksize = cv2_auto_ksize(sigma)
    k = gaussian_kernel1d(sigma, ksize, x.device, x.dtype)
    pad = ksize // 2
    y = x[:, None]
    # a kernel wider than the map: replicate padding must be applied in
    # steps (F.pad 'replicate' allows any width, but conv needs it all)
    y = F.pad(y, (pad, pad, 0, 0), mode='replicate')
    y = F.conv2d(y, k.view(1, 1, 1, ksize))
    y = F.pad(y, (0, 0, pad, pad), mode='replicate')
    y = F.conv2d(y, k.view(1, 1, ksize, 1))
    return y[:, 0]


__all__ = [
    'round_half_even', 'invert_affine', 'affine_nearest_coords',
    'affine_sample_coords', 'sample_bilinear', 'gather_nearest',
    'gaussian_kernel1d', 'cv2_auto_ksize', 'gaussian_blur_replicate'
]
