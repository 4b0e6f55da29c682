"""DACS ClassMix (Tran et al., WACV 2021), as DAFormer / MIC run it.

Half of the classes of a pool are cut from each source image and pasted onto
its target image; labels and pixel weights are mixed with the same mask
(source pixels: ground truth, weight 1; target pixels: the teacher's
pseudo-label and weight), then each mixed image is strongly augmented.
Toggle: ``mix='class'`` in :class:`~mmplugins.models.uda.UDASegmentor`
(``None`` = off); ``class_mix_pool`` and ``strong_aug_gate`` select the
reference's draws (default) or the per-sample variants.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .utils import class_mix_masks, one_mix, strong_transform


def class_mix(src_img: Tensor,
              tgt_img: Tensor,
              src_gt: Tensor,
              p_label: Tensor,
              p_weight: Tensor,
              src_stats: Tuple[Tensor, Tensor],
              tgt_stats: Tuple[Tensor, Tensor],
              ignore_index: int = 255,
              pool: str = 'batch',
              jitter: Optional[dict] = None,
              generator: Optional[torch.Generator] = None
              ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mixed images, labels, pixel weights and the masks (N, 1, H, W).

    ``m`` = 1 where the source is pasted: image ``m*src + (1-m)*tgt``
    (then strongly augmented), label ``m*y_src + (1-m)*y_pseudo``, weight
    ``m*1 + (1-m)*w_pseudo``. The strong augmentation de-normalises each
    pixel with the statistics of the domain it came from (the same
    statistics for both domains unless the preprocessor has per-domain
    normalisation, as in the reference). ``jitter``: keyword arguments of
    :func:`~mmplugins.models.uda.utils.strong_transform` (``None`` = no
    strong augmentation).
    """
    masks = class_mix_masks(src_gt, ignore_index, generator=generator,
                            pool=pool).to(src_img)
    mixed = one_mix(masks, src_img, tgt_img)
    if jitter is not None:
        mean = one_mix(masks, src_stats[0].expand_as(src_img),
                       tgt_stats[0].expand_as(tgt_img))
        std = one_mix(masks, src_stats[1].expand_as(src_img),
                      tgt_stats[1].expand_as(tgt_img))
        # one augmentation call per mixed image (own op order and blur
        # sigma), on/off once per batch: the reference's loop over samples
        mixed = strong_transform(mixed, mean, std, split='sample',
                                 generator=generator, **jitter)
    m = masks[:, 0]
    mixed_lbl = (m * src_gt + (1 - m) * p_label).long()
    mixed_w = m * torch.ones_like(p_weight) + (1 - m) * p_weight
    return mixed, mixed_lbl, mixed_w, masks
