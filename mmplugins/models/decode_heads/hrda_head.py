"""HRDA head: multi-resolution fusion with a learned scale attention.

Semantics of HRDA (Hoyer et al., ECCV 2022 / TPAMI; ``lhoyer/HRDA``): one
``single_scale_head`` (a DAFormer head) predicts the low-resolution *context*
crop and the high-resolution *detail* crop; a second head of the same kind
(``scale_attention``, a 1x1-conv fusion, ``attention_embed_dim`` channels)
predicts from the context features a sigmoid attention ``a`` (one map per
class with ``attention_classwise=True``, else one shared map). With the
detail crop at box ``B`` (full-resolution pixels) and ``up`` the bilinear
upsampling from the context's to the detail's resolution::

    a   <- a * 1[B]                 (no detail prediction outside the crop)
    out =  up(a) * insert(hr, B) + up((1 - a) * lr)

so outside the detail crop the context alone decides, inside it the
attention weighs the two. At inference the detail prediction covers the
whole image (overlapping detail crops averaged, see
:class:`~mmplugins.models.segmentors.HRDAEncoderDecoder`). Losses: the
fused prediction with weight ``1 - hr_loss_weight - lr_loss_weight`` +
``hr_loss_weight`` x the detail prediction on the cropped label (+
``lr_loss_weight`` x the attention-weighted context ``(1 - a) * lr``, the
output the reference's head returns and supervises).

The pure function :func:`hrda_fuse` is the fusion; :class:`HRDAHead` holds
the two heads and the loss weights.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor

from mmplugins.registry import register_module

from .daformer_head import DAFormerHead

Box = Tuple[int, int, int, int]  # (y1, y2, x1, x2)

#: per-scale heads HRDAHead builds -> their output stride (the reference's
#: ``self.os``)
SINGLE_SCALE_HEADS = {'DAFormerHead': 4, 'DLV2Head': 8}


def scale_box(box: Box, divisor: float) -> Box:
    """``box / divisor``, truncated to ints (the reference's
    ``scale_box``)."""
    return tuple(int(v / divisor) for v in box)


def crop(x: Tensor, box: Box) -> Tensor:
    """``x[..., y1:y2, x1:x2]``."""
    y1, y2, x1, x2 = box
    return x[..., y1:y2, x1:x2]


def hrda_fuse(lr_seg: Tensor, hr_seg: Tensor, att: Union[Tensor, float],
              lr_scale: float, hr_scale: float = 1.0,
              hr_box: Optional[Box] = None, output_stride: int = 4,
              align_corners: bool = False,
              return_weighted_lr: bool = False
              ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Fuse the context (``lr_seg``) and detail (``hr_seg``) predictions.

    Args:
        lr_seg: (N, C, h, w) logits of the context crop at ``lr_scale``.
        hr_seg: (N, C, h', w') logits of the detail crop (or of the whole
            image when ``hr_box`` is None) at ``hr_scale``.
        att: (N, C or 1, h, w) attention in [0, 1], or a fixed number.
        hr_box: The detail crop in ``hr_scale`` input pixels, or None.
        output_stride: Of the head (4 for DAFormer on MiT).
        return_weighted_lr: Also return the attention-weighted context
            ``(1 - a) * lr_seg`` (``a`` zeroed outside the crop), what the
            reference's head returns as its context output and supervises
            with ``lr_loss_weight``.
    Returns:
        Tensor: (N, C, h * r, w * r) fused logits, ``r = hr/lr``; with
        ``return_weighted_lr`` the pair (fused, weighted context).
    """
    if hr_box is not None:
        mask = lr_seg.new_zeros((lr_seg.shape[0], 1, *lr_seg.shape[2:]))
        y1, y2, x1, x2 = scale_box(hr_box, output_stride / lr_scale)
        mask[:, :, y1:y2, x1:x2] = 1
        att = att * mask
    lr_seg = (1 - att) * lr_seg
    factor = hr_scale / lr_scale
    up_lr = resize(lr_seg, scale_factor=factor, mode='bilinear',
                   align_corners=align_corners)
    if torch.is_tensor(att):
        att = resize(att, scale_factor=factor, mode='bilinear',
                     align_corners=align_corners)
    if hr_box is not None:
        inserted = torch.zeros_like(up_lr)
        y1, y2, x1, x2 = scale_box(hr_box, output_stride)
        inserted[:, :, y1:y2, x1:x2] = hr_seg
    else:
        inserted = hr_seg
    fused = att * inserted + up_lr
    return (fused, lr_seg) if return_weighted_lr else fused


@register_module('models', toolboxes=('mmseg', ))
class HRDAHead(BaseDecodeHead):
    """Multi-resolution decode head of HRDA.

    Args:
        single_scale_head (str): Type of the per-scale head, one of
            :data:`SINGLE_SCALE_HEADS`: ``'DAFormerHead'`` (output stride
            4; the attention head fuses with a 1x1 conv of
            ``attention_embed_dim`` channels) or ``'DLV2Head'`` (DeepLabV2,
            output stride 8 on the dilated ResNet; the attention head is a
            second DLV2Head of the same dilations, as in the reference).
        lr_loss_weight (float): Weight of the loss of the context output,
            the attention-weighted ``(1 - a) * lr`` (as the reference
            supervises it), on the full label. Defaults to 0.
        hr_loss_weight (float): Weight of the detail prediction's loss (on
            the cropped label). Reference: 0.1. Defaults to 0.
        scales (Sequence[float]): ``[lr_scale, hr_scale]``; set by
            :class:`~mmplugins.models.segmentors.HRDAEncoderDecoder`.
        attention_embed_dim (int): Channels of the attention head. 256.
        attention_classwise (bool): One attention map per class (True) or
            one shared map. Defaults to True.
        fixed_attention (float, optional): Use this constant instead of a
            learned attention (no ``scale_attention`` module).
        enable_hr_crop, hr_slide_inference: Set by the segmentor; accepted
            so that reference configs port.
        **kwargs: The single-scale head's arguments (``in_channels``,
            ``channels``, ``num_classes``, ``embed_dims`` / ``fusion_cfg`` or
            ``decoder_params``, ``norm_cfg``, ``loss_decode``, ...).
    """

    #: the single-scale head's keys pass through (config pre-flight)
    NESTED_TYPES = DAFormerHead.NESTED_TYPES

    def __init__(self,
                 single_scale_head: str = 'DAFormerHead',
                 lr_loss_weight: float = 0.0,
                 hr_loss_weight: float = 0.0,
                 scales: Sequence[float] = (1, ),
                 attention_embed_dim: int = 256,
                 attention_classwise: bool = True,
                 fixed_attention: Optional[float] = None,
                 enable_hr_crop: bool = False,
                 hr_slide_inference: bool = True,
                 **kwargs):
        if single_scale_head not in SINGLE_SCALE_HEADS:
            raise ValueError(
                'HRDAHead: single_scale_head must be one of '
                f'{list(SINGLE_SCALE_HEADS)} (the reference\'s), but got '
                f'single_scale_head={single_scale_head!r}')
        for name, w in (('lr_loss_weight', lr_loss_weight),
                        ('hr_loss_weight', hr_loss_weight)):
            if not 0 <= w <= 1:
                raise ValueError(f'HRDAHead: {name} must be in [0, 1], but '
                                 f'got {name}={w}')
        if lr_loss_weight + hr_loss_weight >= 1:
            raise ValueError(
                'HRDAHead: the fused prediction is weighted 1 - '
                'lr_loss_weight - hr_loss_weight, which must stay > 0, but '
                f'got {lr_loss_weight} + {hr_loss_weight}')
        head_cfg = copy.deepcopy(kwargs)
        head_cfg['type'] = single_scale_head
        attn_cfg = copy.deepcopy(head_cfg)
        if single_scale_head == 'DAFormerHead':
            attn_cfg['channels'] = attention_embed_dim
            attn_cfg.pop('decoder_params', None)
            attn_cfg['embed_dims'] = attention_embed_dim
            # the reference swaps DAFormer's ASPP fusion for a 1x1 conv here
            attn_cfg['fusion_cfg'] = dict(
                type='conv', kernel_size=1, act_cfg=dict(type='ReLU'),
                norm_cfg=kwargs.get('norm_cfg'))
            for key in ('decoder_params', 'embed_dims', 'fusion_cfg'):
                kwargs.pop(key, None)
            kwargs['input_transform'] = 'multiple_select'
        else:  # DLV2Head: the attention is a second DeepLabV2 head
            kwargs.pop('dilations', None)
            kwargs['channels'] = 1
        if not attention_classwise:
            attn_cfg['num_classes'] = 1
        # the outer head only holds the losses: its own classifier is unused
        kwargs['init_cfg'] = None
        super().__init__(**kwargs)
        del self.conv_seg
        del self.dropout
        self.head = MODELS.build(head_cfg)
        if fixed_attention is None:
            self.scale_attention = MODELS.build(attn_cfg)
        else:
            if not 0 <= fixed_attention <= 1:
                raise ValueError('HRDAHead: fixed_attention must be in [0, '
                                 f'1], but got {fixed_attention}')
            self.scale_attention = None
        self.fixed_attention = fixed_attention
        self.attention_classwise = attention_classwise
        self.lr_loss_weight = lr_loss_weight
        self.hr_loss_weight = hr_loss_weight
        self.scales = sorted(scales)
        self.enable_hr_crop = enable_hr_crop
        self.hr_slide_inference = hr_slide_inference
        # the reference's fixed strides: DAFormer on MiT 1/4, DLV2 on the
        # dilated ResNet 1/8
        self.output_stride = SINGLE_SCALE_HEADS[single_scale_head]

    # ------------------------------------------------------------ forward
    def attention(self, lr_feats: List[Tensor]) -> Union[Tensor, float]:
        if self.scale_attention is None:
            return self.fixed_attention
        return torch.sigmoid(self.scale_attention(lr_feats))

    def decode_hr(self, hr_inp: Union[List[Tensor], dict],
                  batch_size: int) -> Tensor:
        """Detail logits: from one crop's features, or from overlapping
        crops (``dict(features=..., boxes=...)``, crop-major batches of
        ``batch_size``) pasted into the image and averaged where they
        overlap."""
        if not isinstance(hr_inp, dict):
            return self.head(hr_inp)
        boxes = [scale_box(b, self.output_stride) for b in hr_inp['boxes']]
        logits = self.head(hr_inp['features'])
        h = max(b[1] for b in boxes)
        w = max(b[3] for b in boxes)
        preds = logits.new_zeros((batch_size, logits.shape[1], h, w))
        count = logits.new_zeros((batch_size, 1, h, w))
        for i, (y1, y2, x1, x2) in enumerate(boxes):
            part = logits[i * batch_size:(i + 1) * batch_size]
            preds += F.pad(part, (x1, w - x2, y1, h - y2))
            count[:, :, y1:y2, x1:x2] += 1
        if (count == 0).any():
            raise RuntimeError('HRDAHead: the detail crops do not cover the '
                               'image')
        return preds / count

    def forward(self, inputs: list, hr_box: Optional[Box] = None
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """``inputs = [context features, detail features]`` ->
        ``(fused, lr_seg, hr_seg)``; ``lr_seg`` is the attention-weighted
        context ``(1 - a) * lr`` (``a`` zeroed outside the detail crop),
        as the reference's head returns and supervises it."""
        if len(inputs) != 2:
            raise ValueError('HRDAHead takes [context features, detail '
                             f'features], got {len(inputs)} entries')
        lr_feats, hr_inp = inputs
        lr_seg = self.head(lr_feats)
        hr_seg = self.decode_hr(hr_inp, lr_feats[0].shape[0])
        fused, lr_seg = hrda_fuse(lr_seg, hr_seg, self.attention(lr_feats),
                                  self.scales[0], self.scales[1], hr_box,
                                  self.output_stride, self.align_corners,
                                  return_weighted_lr=True)
        return fused, lr_seg, hr_seg

    # ------------------------------------------------------------- losses
    def loss_terms(self, out: dict, label: Tensor,
                   weight: Optional[Tensor]) -> List[tuple]:
        """``(name, factor, logits, label, weight)`` per supervised output:
        the fused prediction, then the detail one on the cropped label and
        weight, then the context one (those with a weight > 0)."""
        main = 1 - self.lr_loss_weight - self.hr_loss_weight
        terms = [('', main, out['fused'], label, weight)]
        if self.hr_loss_weight > 0:
            box = out.get('hr_box')
            if box is None:  # detail prediction of the whole image
                terms.append(('hr', self.hr_loss_weight, out['hr'], label,
                              weight))
            else:
                terms.append(('hr', self.hr_loss_weight, out['hr'],
                              crop(label, box),
                              None if weight is None else crop(weight, box)))
        if self.lr_loss_weight > 0:
            terms.append(('lr', self.lr_loss_weight, out['lr'], label,
                          weight))
        return terms

    def weighted_losses(self, out: dict, label: Tensor,
                        weight: Optional[Tensor] = None,
                        ignore_index: Optional[int] = None
                        ) -> Dict[str, Tensor]:
        """Loss values per term (``loss_ce``, ``hr.loss_ce``, ...) with
        their factors applied, as the reference's ``HRDAHead.losses``.
        ``label``: (N, H, W) at the input resolution."""
        ignore = self.ignore_index if ignore_index is None else ignore_index
        losses_decode = (self.loss_decode if isinstance(
            self.loss_decode, torch.nn.ModuleList) else [self.loss_decode])
        out_losses = {}
        for name, factor, logits, lbl, w in self.loss_terms(out, label,
                                                            weight):
            logits = resize(logits, size=lbl.shape[-2:], mode='bilinear',
                            align_corners=self.align_corners)
            prefix = f'{name}.' if name else ''
            for loss_decode in losses_decode:
                v = loss_decode(logits, lbl, weight=w, ignore_index=ignore)
                out_losses[prefix + loss_decode.loss_name] = v * factor
        return out_losses

    def loss_by_feat(self, seg_logits, batch_data_samples) -> dict:
        raise RuntimeError('HRDAHead losses need the detail crop: train '
                           'through HRDAEncoderDecoder.loss / UDASegmentor')

    def predict_by_feat(self, seg_logits, batch_img_metas) -> Tensor:
        fused = seg_logits[0] if isinstance(seg_logits, tuple) else seg_logits
        return super().predict_by_feat(fused, batch_img_metas)
