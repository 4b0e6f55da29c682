"""HRDAEncoderDecoder: context + detail crops, fused by a scale attention.

Semantics of HRDA (Hoyer et al., ECCV 2022 / TPAMI; ``lhoyer/HRDA`` as used
by ``lhoyer/MIC``). With ``scales=[1, 0.5]`` and ``hr_crop_size=(512, 512)``
on 1024x1024 training crops:

* training: the *context* is the whole crop at scale 0.5 (512x512 pixels),
  the *detail* a random 512x512 crop of it at full resolution whose corner
  is divisible by ``crop_coord_divisible`` (8: the head's output stride 4
  times the context's down-scaling 2, so the crop lands on whole context
  output pixels); both go through the same backbone and head
  (:class:`~mmplugins.models.decode_heads.HRDAHead`);
* inference (pseudo-labels and test): the context is the whole image at
  0.5, the detail prediction covers the whole image at full resolution from
  ``hr_crop_size`` crops with stride ``hr_crop_size / 2``
  (``hr_slide_overlapping``), all crops in one batched forward, averaged
  where they overlap; at test time ``test_cfg=dict(mode='slide',
  crop_size=(1024, 1024), stride=(512, 512), batch_size=None)`` slides this
  over larger images, windows batched
  (:class:`~mmplugins.models.segmentors.BatchedSlideEncoderDecoder`).

``forward(mode='train_logits')`` is the training forward the UDA step uses:
it returns ``dict(fused, lr, hr, hr_box)`` (``lr``: the attention-weighted
context, as the reference supervises it); ``mode='tensor'`` returns the
fused inference logits at the input resolution (what an EMA teacher's
pseudo-labels are made from).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor

from mmplugins.registry import register_module
from ..decode_heads.hrda_head import Box, HRDAHead, crop
from .batched_slide import BatchedSlideEncoderDecoder, slide_windows


def random_crop_box(img_h: int, img_w: int, crop_size: Sequence[int],
                    divisible: int = 1,
                    rng: Optional[np.random.Generator] = None) -> Box:
    """A random ``crop_size`` box ``(y1, y2, x1, x2)`` inside the image with
    corners divisible by ``divisible``: offsets ``k * divisible`` for ``k``
    uniform in ``[0, (margin + 1) // divisible)`` (the reference's
    ``get_crop_bbox``; with ``divisible > 1`` the last offset is the
    largest multiple below the margin)."""
    ch, cw = crop_size
    if (img_h, img_w) == (ch, cw):
        return 0, img_h, 0, img_w
    randint = np.random.randint if rng is None else rng.integers
    margin_h = max(img_h - ch, 0)
    margin_w = max(img_w - cw, 0)
    y1 = int(randint(0, (margin_h + 1) // divisible)) * divisible
    x1 = int(randint(0, (margin_w + 1) // divisible)) * divisible
    return y1, y1 + ch, x1, x1 + cw


@register_module('models', toolboxes=('mmseg', ))
class HRDAEncoderDecoder(BatchedSlideEncoderDecoder):
    """mmseg ``EncoderDecoder`` with HRDA's multi-resolution training and
    inference (argument names and meanings of the reference).

    Args:
        scales (Sequence[float]): ``[1, s]`` with ``0 < s < 1`` (any order):
            detail at full resolution, context at ``s``. Reference
            ``[1, 0.5]``.
        hr_crop_size (tuple[int, int]): Detail crop (h, w) in full-resolution
            pixels; must divide the training crop. Reference (512, 512).
        hr_slide_inference (bool): Detail prediction of the whole image from
            overlapping detail crops at inference (True), or from one
            forward of the whole full-resolution image (False).
        hr_slide_overlapping (bool): Detail crops overlap by half (stride =
            crop / 2). Defaults to True.
        crop_coord_divisible (int): Detail-crop corners divisible by this; a
            multiple of the head's output stride over the context scale
            (8 for ``s = 0.5``). Defaults to 1 (then set it!).
        blur_hr_crop (bool): Down-up-sample the detail input (ablation of
            the reference). Defaults to False.
        allow_misaligned_crop (bool): Accept a ``crop_coord_divisible``
            that is not a multiple of output stride / context scale, as the
            reference does (its default 1; DeepLabV2's 8 with stride 8 at
            0.5; 8 at scale 0.25): the crop box is then truncated to the
            context output grid (``int(v / step)``, the reference's
            ``scale_box``), so the attention mask can sit up to one context
            pixel off the detail logits. ``hr_crop_size`` must still be a
            multiple. Defaults to False (an error); converted reference
            configs set it where the reference ran that way.
        feature_scale (float): Scale of the features the ImageNet feature
            distance uses (the context's, 0.5). Defaults to the context
            scale.
        **kwargs: ``EncoderDecoder`` arguments; ``decode_head`` must be an
            :class:`~mmplugins.models.decode_heads.HRDAHead`.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 scales: Sequence[float] = (1, 0.5),
                 hr_crop_size: Optional[Sequence[int]] = None,
                 hr_slide_inference: bool = True,
                 hr_slide_overlapping: bool = True,
                 crop_coord_divisible: int = 1,
                 blur_hr_crop: bool = False,
                 feature_scale: Optional[float] = None,
                 allow_misaligned_crop: bool = False,
                 **kwargs):
        if not isinstance(decode_head, dict) or \
                decode_head.get('type') not in ('HRDAHead', HRDAHead):
            raise ValueError(
                'HRDAEncoderDecoder: decode_head must be an HRDAHead '
                "(type='HRDAHead', single_scale_head='DAFormerHead' or "
                "'DLV2Head', ...), "
                f"but got type={dict(decode_head).get('type')!r}")
        scales = sorted(float(s) for s in scales)
        if len(scales) != 2 or scales[1] != 1 or not 0 < scales[0] < 1:
            raise ValueError('HRDAEncoderDecoder: scales must be [1, s] with '
                             f'0 < s < 1, but got scales={scales}')
        if hr_crop_size is None or not (
                len(hr_crop_size) == 2
                and all(isinstance(v, int) and v > 0 for v in hr_crop_size)):
            raise ValueError('HRDAEncoderDecoder: hr_crop_size must be (h, w)'
                             ' positive ints, but got '
                             f'hr_crop_size={hr_crop_size!r}')
        decode_head = dict(decode_head, scales=scales, enable_hr_crop=True,
                           hr_slide_inference=hr_slide_inference)
        super().__init__(backbone=backbone, decode_head=decode_head,
                         **kwargs)
        if self.with_auxiliary_head:
            raise ValueError('HRDAEncoderDecoder: auxiliary_head is not '
                             'supported (as in the reference)')
        os_ = self.decode_head.output_stride
        step = os_ / scales[0]
        corners_ok = step == int(step) and \
            crop_coord_divisible % int(step) == 0
        if step != int(step) or any(v % int(step) for v in hr_crop_size) \
                or not (corners_ok or allow_misaligned_crop):
            raise ValueError(
                'HRDAEncoderDecoder: the detail crop must land on whole '
                f'context output pixels: crop_coord_divisible and '
                f'hr_crop_size must be multiples of output_stride / scale = '
                f'{os_} / {scales[0]} = {step:g}, but got '
                f'crop_coord_divisible={crop_coord_divisible}, '
                f'hr_crop_size={tuple(hr_crop_size)} (the reference truncates '
                'misaligned crop corners to the context grid: '
                'allow_misaligned_crop=True does the same, with hr_crop_size '
                'a multiple)')
        self.allow_misaligned_crop = allow_misaligned_crop
        if feature_scale is None:
            feature_scale = scales[0]
        if feature_scale != scales[0]:
            raise ValueError(
                'HRDAEncoderDecoder: feature_scale must be the context scale '
                f'{scales[0]} (the feature distance compares whole-image '
                f'features), but got feature_scale={feature_scale}')
        self.scales = scales
        self.hr_crop_size = tuple(hr_crop_size)
        self.hr_slide_inference = hr_slide_inference
        self.hr_slide_overlapping = hr_slide_overlapping
        self.crop_coord_divisible = crop_coord_divisible
        self.blur_hr_crop = blur_hr_crop
        self.feature_scale = feature_scale

    # ------------------------------------------------------------ helpers
    def extract_unscaled_feat(self, img: Tensor) -> List[Tensor]:
        x = self.backbone(img)
        if self.with_neck:
            x = self.neck(x)
        return x

    def _scaled(self, img: Tensor, s: float) -> Tensor:
        if s == 1:
            if self.blur_hr_crop:
                small = resize(img, scale_factor=0.5, mode='bilinear',
                               align_corners=self.align_corners)
                return resize(small, scale_factor=2, mode='bilinear',
                              align_corners=self.align_corners)
            return img
        return resize(img, scale_factor=s, mode='bilinear',
                      align_corners=self.align_corners)

    def slide_boxes(self, h: int, w: int) -> List[Box]:
        """Detail crops covering an ``h x w`` full-resolution image."""
        crop_hw = self.hr_crop_size
        stride = ([c // 2 for c in crop_hw] if self.hr_slide_overlapping
                  else crop_hw)
        return slide_windows(h, w, crop_hw, stride)

    def extract_slide_feat(self, img: Tensor) -> dict:
        """Features of all detail crops in one batched forward, crop-major
        (crop 0 of every image, then crop 1, ...)."""
        boxes = self.slide_boxes(*img.shape[-2:])
        crops = torch.cat([crop(img, b) for b in boxes])
        return dict(features=self.extract_unscaled_feat(crops), boxes=boxes)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Features at ``feature_scale`` (the context's), as the reference:
        what the frozen ImageNet copy is compared with."""
        return self.extract_unscaled_feat(
            self._scaled(inputs, self.feature_scale))

    # ---------------------------------------------------------- training
    def train_logits(self, inputs: Tensor) -> dict:
        """Training forward: context = whole crop at the low scale (its
        features first, so a hook on the backbone sees them first), detail
        = a random ``hr_crop_size`` crop at full resolution."""
        h, w = inputs.shape[-2:]
        ch, cw = self.hr_crop_size
        if ch > h or cw > w or h % ch or w % cw:
            raise ValueError(
                f'HRDAEncoderDecoder: hr_crop_size={self.hr_crop_size} must '
                f'divide the training crop {(h, w)} (reference: 512 in '
                '1024)')
        lr_feats = self.extract_unscaled_feat(self._scaled(inputs,
                                                           self.scales[0]))
        box = random_crop_box(h, w, self.hr_crop_size,
                              self.crop_coord_divisible)
        hr_feats = self.extract_unscaled_feat(
            crop(self._scaled(inputs, 1), box))
        fused, lr, hr = self.decode_head([lr_feats, hr_feats], hr_box=box)
        return dict(fused=fused, lr=lr, hr=hr, hr_box=box)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Supervised HRDA training through the stock mmseg path."""
        out = self.train_logits(inputs)
        label = torch.stack([ds.gt_sem_seg.data for ds in data_samples
                             ])[:, 0].long()
        losses = self.decode_head.weighted_losses(out, label)
        return {f'decode.{k}': v for k, v in losses.items()}

    # --------------------------------------------------------- inference
    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: Optional[List[dict]] = None
                      ) -> Tensor:
        """Fused logits at the input resolution (no detail crop box)."""
        lr_feats = self.extract_unscaled_feat(self._scaled(inputs,
                                                           self.scales[0]))
        hr_img = self._scaled(inputs, 1)
        hr_inp = (self.extract_slide_feat(hr_img) if self.hr_slide_inference
                  else self.extract_unscaled_feat(hr_img))
        fused, _, _ = self.decode_head([lr_feats, hr_inp])
        return resize(fused, size=inputs.shape[2:], mode='bilinear',
                      align_corners=self.align_corners)

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        return self.encode_decode(inputs)

    def forward(self, inputs: Tensor, data_samples=None,
                mode: str = 'tensor'):
        if mode == 'train_logits':
            return self.train_logits(inputs)
        return super().forward(inputs, data_samples, mode)

