"""The dual-branch distortion view made on the training device.

The device twin of :class:`~mmplugins.datasets.transforms.dual_branch
.DualBranchAug`: from a batch of source crops ``(N, C, H, W)`` and their
labels ``(N, H, W)`` it makes the distortion view with the same steps, in
the same order, with the same parameter distributions:

1. albumentations ``Affine`` (scale, translate_percent, rotate, shear, per
   axis, ``p``): same random ranges, same matrix construction (about the
   image centre, ``translate`` truncated to whole pixels as albumentations
   does);
2. albumentations ``ElasticTransform`` (``alpha``, ``sigma``, ``p``):
   Gaussian noise normalised by its largest magnitude, blurred with the
   Gaussian OpenCV would use (``(2H, W)`` stacked fields, replicated
   borders), times ``alpha``;
3. optional :class:`FisheyeDistortion` (``fisheye=dict(...)``);
4. optional ellipse mix (``ellipse_prob``, ``ellipse_axes``): outside a
   random centred ellipse the view shows the background and label
   ``ellipse_label``.

Sampling is separated from application (albumentations style):
:meth:`BatchDualBranchAug.get_params` draws a :class:`DualBranchWarpParams`,
:meth:`BatchDualBranchAug.apply` applies it. Given the same parameters the
view equals the CPU path's (albumentations / cv2) within interpolation
tolerance and its label map is identical (see
:mod:`mmplugins.models.uda.batch_warp`). Each stage resamples the output of
the previous one and rounds it to the uint8 grid, as the CPU path does.

Ellipse background: with ``target_img_dir`` (as in the shipped configs) the
random target image is decoded on the CPU by
:class:`~mmplugins.datasets.transforms.dual_branch_background
.DualBranchBackground` (which also draws the ``ellipse_prob`` coin) and
reaches the device in the source data sample (``dist_background``,
``metainfo['dist_ellipse']``); without it the outside gets ``img_fill`` and
the coin is drawn here.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import torch

from mmplugins.datasets.transforms.dual_branch import DualBranchAug
from .batch_fisheye import BatchFisheyeDistortion
from .batch_warp import (affine_sample_coords, gather_nearest,
                         gaussian_blur_replicate, invert_affine,
                         round_half_even, sample_bilinear)

#: albumentations options the device path implements, with their values
_AFFINE_OK = dict(interpolation=cv2.INTER_LINEAR, fit_output=False,
                  border_mode=cv2.BORDER_CONSTANT, translate_px=None,
                  balanced_scale=False)
_ELASTIC_OK = dict(interpolation=cv2.INTER_LINEAR, approximate=False,
                   same_dxdy=False, border_mode=cv2.BORDER_CONSTANT)


@dataclass
class DualBranchWarpParams:
    """The random draw of one batch's distortion views.

    Attributes:
        affine (Tensor, optional): ``(N, 3, 3)`` float64 forward matrices
            (albumentations' ``matrix``: output = M @ input); identity where
            the ``p`` coin failed. None = affine off.
        affine_on (Tensor, optional): ``(N,)`` bool, the ``p`` coin.
        elastic_map_x, elastic_map_y (Tensor, optional): ``(N, H, W)``
            float32 source coordinates (albumentations' ``map_x`` /
            ``map_y``). None = elastic off.
        elastic_on (Tensor, optional): ``(N,)`` bool, the ``p`` coin.
        fisheye (list, optional): Per-sample :class:`FisheyeDistortion`
            parameters (None entries: not warped). None = off.
        ellipse_axes (Tensor, optional): ``(N, 2)`` float64 semi-axes
            (fractions of the half width / height), NaN rows = no mix.
    """
    affine: Optional[torch.Tensor] = None
    affine_on: Optional[torch.Tensor] = None
    elastic_map_x: Optional[torch.Tensor] = None
    elastic_map_y: Optional[torch.Tensor] = None
    elastic_on: Optional[torch.Tensor] = None
    fisheye: Optional[List[Optional[dict]]] = None
    ellipse_axes: Optional[torch.Tensor] = field(default=None)


def _unsupported(step: str, key: str, value, allowed) -> ValueError:
    return ValueError(
        f'BatchDualBranchAug (device augmentation): {step}.{key}={value!r} '
        f'is not supported on the device (supported: {key}={allowed!r}); '
        "keep dict(type='DualBranchAug', ...) in the CPU source pipeline "
        '(remove it from data_preprocessor.device_aug) to use it')


class BatchDualBranchAug:
    """Make the dual-branch distortion view of a batch on its device.

    Args:
        affine, elastic, fisheye, ellipse_prob, ellipse_axes,
        target_img_dir, target_img_suffix, data_root, ellipse_label,
        img_fill, seg_fill, with_label: Exactly the arguments of
            :class:`DualBranchAug` (same defaults), validated by it; a config
            dict of ``DualBranchAug`` moves here unchanged. ``target_img_dir``
            only says that the background comes from the CPU
            (:class:`DualBranchBackground` in the source pipeline) and that
            the ``ellipse_prob`` coin was drawn there.
        quantize (bool): Round the image to the uint8 grid after every
            stage, as the CPU path's uint8 arrays are. Defaults to True.

    Raises:
        ValueError: a bad argument (from ``DualBranchAug``), or an option
            the device path does not implement (``fit_output``,
            ``translate_px``, ``balanced_scale``, ``approximate``,
            ``same_dxdy``, a non-linear image interpolation, a non-constant
            border): the message names it and the CPU alternative.
    """

    def __init__(self, quantize: bool = True, **kwargs):
        # DualBranchAug validates every argument the same way as on the CPU;
        # the target folder is read by DualBranchBackground, not here
        cpu_kwargs = dict(kwargs)
        self.background_from_cpu = cpu_kwargs.pop('target_img_dir',
                                                  None) is not None
        cpu_kwargs.pop('target_img_suffix', None)
        cpu_kwargs.pop('data_root', None)
        self.cpu = DualBranchAug(**cpu_kwargs)
        self.quantize = bool(quantize)
        self._affine = self._elastic = None
        for t in (self.cpu._albu.transforms if self.cpu._albu else []):
            name = type(t).__name__
            if name == 'Affine':
                self._check(t, 'affine', _AFFINE_OK)
                self._affine = t
            elif name == 'ElasticTransform':
                self._check(t, 'elastic', _ELASTIC_OK)
                self._elastic = t
        self._fisheye = None
        if self.cpu.fisheye is not None:
            self._fisheye = BatchFisheyeDistortion(**dict(
                dict(img_fill=self.cpu.img_fill, seg_fill=self.cpu.seg_fill),
                **self.cpu.fisheye))

    @staticmethod
    def _check(t, step, allowed):
        for key, ok in allowed.items():
            value = getattr(t, key)
            if value != ok:
                raise _unsupported(step, key, value, ok)

    @property
    def img_fill(self) -> float:
        return float(self.cpu.img_fill)

    # ------------------------------------------------------------ sampling
    def _uniform(self, n, low_high, device):
        low, high = (float(v) for v in low_high)
        return low + (high - low) * torch.rand(n, device=device,
                                               dtype=torch.float64)

    def _affine_matrices(self, n, h, w, device) -> torch.Tensor:
        t = self._affine
        sx = self._uniform(n, t.scale['x'], device)
        sy = sx if t.keep_ratio else self._uniform(n, t.scale['y'], device)
        tp = t.translate_percent or {'x': (0, 0), 'y': (0, 0)}
        # albumentations: int(fraction * size), truncated towards zero
        tx = torch.trunc(self._uniform(n, tp['x'], device) * w)
        ty = torch.trunc(self._uniform(n, tp['y'], device) * h)
        shx = -self._uniform(n, t.shear['x'], device)
        shy = -self._uniform(n, t.shear['y'], device)
        rot = torch.deg2rad(torch.remainder(
            self._uniform(n, t.rotate, device), 360.))
        return affine_matrix(sx, sy, tx, ty, shx, shy, rot, h, w)

    def _elastic_maps(self, n, h, w, device):
        t = self._elastic
        if t.noise_distribution == 'gaussian':
            fields = torch.randn(n, 2, h, w, device=device)
            peak = fields.abs().amax(dim=(1, 2, 3), keepdim=True)
            fields = torch.where(peak > 1e-6, fields / peak, fields)
        else:
            fields = torch.rand(n, 2, h, w, device=device) * 2 - 1
        # albumentations blurs the two fields stacked as one (2H, W) image
        fields = gaussian_blur_replicate(fields.view(n, 2 * h, w),
                                         float(t.sigma)).view(n, 2, h, w)
        fields = fields * float(t.alpha)
        ys, xs = torch.meshgrid(torch.arange(h, device=device),
                                torch.arange(w, device=device),
                                indexing='ij')
        return xs + fields[:, 0], ys + fields[:, 1]

    def get_params(self, n: int, h: int, w: int, device=None,
                   ellipse: Optional[torch.Tensor] = None
                   ) -> DualBranchWarpParams:
        """Draw the distortion of ``n`` views of size ``(h, w)``.

        Args:
            n, h, w (int): Batch size and view size.
            device: Where the tensors live (default CPU).
            ellipse (Tensor, optional): ``(n,)`` bool: which views get the
                ellipse mix (the CPU's coin, with a packed background).
                None draws the coin with ``ellipse_prob``.

        Uses the global torch RNG of ``device`` (and ``np.random`` for the
        fisheye levels, as the CPU transform).
        """
        device = torch.device('cpu') if device is None else device
        p = DualBranchWarpParams()
        if self._affine is not None:
            p.affine_on = torch.rand(n, device=device) < self._affine.p
            m = self._affine_matrices(n, h, w, device)
            eye = torch.eye(3, dtype=m.dtype, device=device).expand_as(m)
            p.affine = torch.where(p.affine_on[:, None, None], m, eye)
        if self._elastic is not None:
            p.elastic_on = torch.rand(n, device=device) < self._elastic.p
            p.elastic_map_x, p.elastic_map_y = self._elastic_maps(
                n, h, w, device)
        if self._fisheye is not None:
            p.fisheye = [self._fisheye.cpu.draw_params() for _ in range(n)]
        if ellipse is None and self.cpu.ellipse_prob > 0:
            ellipse = torch.rand(n, device=device) < self.cpu.ellipse_prob
        if ellipse is not None:
            (alo, ahi), (blo, bhi) = self.cpu.ellipse_axes
            axes = torch.stack([self._uniform(n, (alo, ahi), device),
                                self._uniform(n, (blo, bhi), device)], 1)
            p.ellipse_axes = torch.where(
                ellipse.to(device)[:, None], axes,
                torch.full_like(axes, float('nan')))
        return p

    # --------------------------------------------------------- application
    def _q(self, img):
        return img.round().clamp_(0, 255) if self.quantize else img

    def apply(self, img: torch.Tensor, seg: Optional[torch.Tensor],
              params: DualBranchWarpParams,
              background: Optional[Sequence[Optional[torch.Tensor]]] = None):
        """The distortion views of ``img`` / ``seg`` for ``params``.

        Args:
            img (Tensor): ``(N, C, H, W)`` float source crops (pixel values,
                before normalisation).
            seg (Tensor, optional): ``(N, H, W)`` integer labels.
            params (DualBranchWarpParams): From :meth:`get_params`.
            background (list, optional): Per view a ``(C, H, W)`` image
                shown outside the ellipse (None entries: ``img_fill``).

        Returns:
            tuple: ``dist_img`` ``(N, C, H, W)`` float, ``dist_seg``
            ``(N, H, W)`` (None when ``seg`` is None); new tensors.
        """
        n, c, h, w = img.shape
        fill, seg_fill = self.img_fill, self.cpu.seg_fill
        out, lab = img, seg
        if params.affine is not None:
            sx, sy = affine_sample_coords(invert_affine(params.affine), h, w)
            on = params.affine_on
            warped = self._q(sample_bilinear(out, sx, sy, fill))
            out = torch.where(on[:, None, None, None], warped, out)
            if lab is not None:
                moved = gather_nearest(lab, round_half_even(sx).long(),
                                       round_half_even(sy).long(), seg_fill)
                lab = torch.where(on[:, None, None], moved, lab)
        if params.elastic_map_x is not None:
            mx, my = params.elastic_map_x, params.elastic_map_y
            on = params.elastic_on
            warped = self._q(sample_bilinear(out, mx, my, fill))
            out = torch.where(on[:, None, None, None], warped, out)
            if lab is not None:
                moved = gather_nearest(lab, round_half_even(mx).long(),
                                       round_half_even(my).long(), seg_fill)
                lab = torch.where(on[:, None, None], moved, lab)
        if params.fisheye is not None:
            out, lab = self._fisheye.apply(out, lab, params.fisheye)
            out = self._q(out)
        if params.ellipse_axes is not None:
            out, lab = self._mix(out, lab, params.ellipse_axes, background)
        if out is img:
            out = img.clone()
        if lab is not None and lab is seg:
            lab = seg.clone()
        return out, lab

    def _mix(self, img, seg, axes, background):
        n, c, h, w = img.shape
        mixed = ~torch.isnan(axes[:, 0])
        if not bool(mixed.any()):
            return img, seg
        dev = img.device
        xs = torch.arange(w, device=dev, dtype=torch.float64)
        ys = torch.arange(h, device=dev, dtype=torch.float64)
        # the formula of ellipse_mask (float64, pixel centres), per view
        nx = (xs + 0.5 - w / 2.) / (w / 2.)
        ny = (ys + 0.5 - h / 2.) / (h / 2.)
        ax = torch.where(mixed, axes[:, 0], torch.ones_like(axes[:, 0]))
        ay = torch.where(mixed, axes[:, 1], torch.ones_like(axes[:, 1]))
        inside = ((nx[None, None, :] / ax[:, None, None])**2 +
                  (ny[None, :, None] / ay[:, None, None])**2) <= 1.
        outside = ~inside & mixed[:, None, None]
        bg = torch.full_like(img, self.img_fill)
        for i in range(n):
            if background is not None and background[i] is not None:
                bg[i] = background[i].to(img.dtype)
        img = torch.where(outside[:, None], bg, img)
        if seg is not None:
            seg = torch.where(outside, torch.full_like(
                seg, self.cpu.ellipse_label), seg)
        return img, seg

    def __call__(self, img, seg=None, ellipse=None, background=None):
        n, _, h, w = img.shape
        return self.apply(img, seg,
                          self.get_params(n, h, w, img.device, ellipse),
                          background)

    def __repr__(self) -> str:
        return f'Batch{self.cpu!r}'


def affine_matrix(sx, sy, tx, ty, shx, shy, rot, h, w) -> torch.Tensor:
    """albumentations' ``create_affine_transformation_matrix`` for a batch.

    All arguments ``(N,)`` float64 (angles in radians, shear already
    negated as albumentations draws it); the shift is the image centre
    ``(w / 2 - 0.5, h / 2 - 0.5)``. Returns ``(N, 3, 3)`` float64.
    """
    n = sx.shape[0]
    dev = sx.device

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], 1)

    zero = torch.zeros(n, dtype=torch.float64, device=dev)
    one = torch.ones_like(zero)
    cx, cy = w / 2 - 0.5, h / 2 - 0.5
    m_tl = mat([[one, zero, zero - cx], [zero, one, zero - cy],
                [zero, zero, one]])
    m_scale = mat([[sx, zero, zero], [zero, sy, zero], [zero, zero, one]])
    cos, sin = torch.cos(rot), torch.sin(rot)
    m_rot = mat([[cos, sin, zero], [-sin, cos, zero], [zero, zero, one]])
    m_shear = mat([[one, torch.tan(torch.deg2rad(shx)), zero],
                   [torch.tan(torch.deg2rad(shy)), one, zero],
                   [zero, zero, one]])
    m_tr = mat([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
    m_c = mat([[one, zero, zero + cx], [zero, one, zero + cy],
               [zero, zero, one]])
    m = m_c @ m_tr @ m_shear @ m_rot @ m_scale @ m_tl
    m[:, 2] = torch.tensor([0., 0., 1.], dtype=m.dtype, device=dev)
    return m


__all__ = ['BatchDualBranchAug', 'DualBranchWarpParams', 'affine_matrix']
