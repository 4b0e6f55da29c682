"""MIC: masked image consistency (Hoyer et al., CVPR 2023).

The student sees an image with ~``mask_ratio`` of its ``block_size``-pixel
blocks zeroed (after a fresh strong augmentation in the ``...aug`` modes) and
is trained on labels of the *unmasked* image -- the EMA teacher's
pseudo-labels for target images, the ground truth for source images -- so it
must use context to recognise what is hidden. Toggle: ``mask_lambda > 0`` in
:class:`~mmplugins.models.uda.UDASegmentor`; the reference's keys
(``mask_mode``, ``mask_alpha``, ``mask_pseudo_threshold``,
``mask_generator``) are accepted with their meanings.

The pure functions at the top are the reference's mask generator; the
:class:`MaskingConsistency` module below composes them with the mask modes
and the optional separate EMA teacher, as the reference's
``MaskingConsistencyModule`` does.
"""
import copy
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmplugins.registry import register_module

from .utils import (check_choice, copy_weights, ema_alpha, ema_update,
                    strong_transform)

#: the reference's modes: which images are masked, and whether they are
#: strongly augmented ('...aug') before masking
MASK_MODES = ('separate', 'separatesrc', 'separatetrg', 'separateaug',
              'separatesrcaug', 'separatetrgaug')


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


@register_module('task_utils', toolboxes=('mmseg', ), name='block')
class BlockMaskGenerator:
    """The reference's ``mask_generator=dict(type='block', ...)``.

    Registered under the reference's own name (``'block'``, mmseg's
    ``TASK_UTILS``), so a MIC config's ``mask_generator`` resolves like any
    other ``type=`` -- the config pre-flight of ``tools/train.py`` and the
    model build read the same registry.

    Args:
        mask_block_size (int): Block edge in pixels. Defaults to 32.
        mask_ratio (float): Probability that a block is masked, in [0, 1).
            Defaults to 0.7.
    """

    def __init__(self, mask_block_size: int = 32, mask_ratio: float = 0.7):
        if isinstance(mask_block_size, bool) or not isinstance(
                mask_block_size, int) or mask_block_size < 1:
            raise ValueError('mask_generator.mask_block_size must be an int '
                             f'>= 1, got {mask_block_size!r}')
        if not isinstance(mask_ratio, (int, float)) or \
                not 0.0 <= mask_ratio < 1.0:
            raise ValueError('mask_generator.mask_ratio must be in [0, 1), '
                             f'got {mask_ratio!r}')
        self.mask_block_size = mask_block_size
        self.mask_ratio = float(mask_ratio)

    def __call__(self, shape, device=None, generator=None) -> Tensor:
        return block_mask(shape, self.mask_block_size, self.mask_ratio,
                          device=device, generator=generator)


def resolve_mask_generator(gen: Optional[dict], block_size: Optional[int],
                           ratio: Optional[float]) -> Tuple[int, float]:
    """(block size, ratio) from the reference's ``mask_generator`` dict
    (built through the registry: ``type='block'`` is
    :class:`BlockMaskGenerator`) or the two plain keys (defaults 32, 0.7);
    both forms at once is an error.
    """
    if gen is not None:
        if block_size is not None or ratio is not None:
            raise ValueError(
                'UDASegmentor: give `mask_generator` (the reference '
                'form) or `mask_block_size` / `mask_ratio`, not both')
        from mmseg.registry import TASK_UTILS
        gen = dict(gen)
        gen.setdefault('type', 'block')
        try:
            obj = TASK_UTILS.build(gen)
        except KeyError as e:
            raise ValueError(
                f"mask_generator: unknown type {gen['type']!r} (registered "
                "mask generators: 'block')") from e
        except TypeError as e:
            raise ValueError(f'mask_generator {gen}: {e}') from e
        return obj.mask_block_size, obj.mask_ratio
    return (32 if block_size is None else block_size,
            0.7 if ratio is None else ratio)


def _same_or_number(name: str, value, lo: float, hi: float,
                    allow_none: bool = False):
    if value == 'same' or (allow_none and value is None):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not lo <= value <= hi:
        none = ', None' if allow_none else ''
        raise ValueError(f"{name} must be 'same'{none} or a number in "
                         f'[{lo}, {hi}], got {value!r}')
    return float(value)


class MaskingConsistency(nn.Module):
    """The MIC term of :class:`~mmplugins.models.uda.UDASegmentor`.

    Args:
        mask_mode (str): One of :data:`MASK_MODES` (reference meanings):
            ``'separatetrg'`` masks the target batch (pseudo-labels and
            weight of a teacher), ``'separatesrc'`` the source batch (ground
            truth, weight 1), ``'separate'`` the first source and the first
            target image; the ``...aug`` variants strongly augment first
            (jitter on/off drawn once per batch; the blur is always drawn,
            whatever the host's ``blur`` flag, as in the reference).
        mask_lambda (float): Loss weight.
        block_size (int): Mask block size in pixels.
        mask_ratio (float): Probability a block is masked.
        mask_alpha ('same' | float): EMA decay cap of MIC's teacher.
        mask_pseudo_threshold ('same' | float | None): Its confidence
            threshold; ``None``: no confidence weighting, every pixel of
            the MIC teacher's pseudo-label has weight 1 (still 0 outside
            the valid-pseudo-label mask and the ignored top/bottom rows),
            the reference's MIC ablation "w/o pseudo label confidence
            weight". With both ``'same'`` MIC reuses the host's
            pseudo-labels; otherwise it keeps a *separate* EMA teacher
            (built from ``student``) with these values (the reference's
            ACDC / DarkZurich configs, the MIC ablations).
        student (nn.Module, optional): Needed for a separate teacher.
        source_only (bool): The host trains source-only
            (``UDASegmentor(source_only=True)``): whatever ``mask_mode``
            says, the source batch is masked and trained on its ground
            truth (weight None); the ``...aug`` modes still augment it.
            No separate teacher is built (the reference builds one for
            ``mask_alpha`` / ``mask_pseudo_threshold`` not ``'same'`` but
            never reads it). Defaults to False.
        copy_buffers (bool): The separate teacher's EMA step also copies
            the student's buffers (see
            :func:`~mmplugins.models.uda.utils.ema_update`). False.
    """

    def __init__(self,
                 mask_mode: str = 'separatetrgaug',
                 mask_lambda: float = 1.0,
                 block_size: int = 32,
                 mask_ratio: float = 0.7,
                 mask_alpha: Union[str, float] = 'same',
                 mask_pseudo_threshold: Union[str, float, None] = 'same',
                 student: Optional[nn.Module] = None,
                 source_only: bool = False,
                 copy_buffers: bool = False):
        super().__init__()
        check_choice('mask_mode', mask_mode, MASK_MODES + (None, ))
        if mask_mode is None:
            raise ValueError('mask_mode=None turns MIC off: do not build '
                             'MaskingConsistency then')
        block_mask((1, 1, 8, 8), block_size, mask_ratio)  # validate now
        self.mask_mode = mask_mode
        self.mask_lambda = mask_lambda
        self.block_size = block_size
        self.mask_ratio = mask_ratio
        self.mask_alpha = _same_or_number('mask_alpha', mask_alpha, 0, 1)
        self.mask_pseudo_threshold = _same_or_number(
            'mask_pseudo_threshold', mask_pseudo_threshold, 0, 1,
            allow_none=True)
        self.source_only = bool(source_only)
        self.copy_buffers = bool(copy_buffers)
        self.teacher = None
        if self.separate_teacher:
            if student is None:
                raise ValueError('MaskingConsistency: a separate teacher '
                                 '(mask_alpha / mask_pseudo_threshold not '
                                 "'same') needs the student to copy")
            self.teacher = copy.deepcopy(student)
            for p in self.teacher.parameters():
                p.requires_grad_(False)

    @property
    def separate_teacher(self) -> bool:
        return not self.source_only and (
            self.mask_alpha != 'same'
            or self.mask_pseudo_threshold != 'same')

    @property
    def uses_target(self) -> bool:
        return not self.source_only and 'src' not in self.mask_mode

    def extra_repr(self) -> str:
        return (f'mask_mode={self.mask_mode!r}, lambda={self.mask_lambda}, '
                f'block={self.block_size}, ratio={self.mask_ratio}, '
                f'alpha={self.mask_alpha!r}, '
                f'threshold={self.mask_pseudo_threshold!r}')

    def resolve(self, alpha: float, threshold: float
                ) -> Tuple[float, Optional[float]]:
        """The (alpha, threshold) MIC's teacher uses given the host's
        (threshold None: every pixel weight 1)."""
        a = alpha if self.mask_alpha == 'same' else self.mask_alpha
        t = (threshold if self.mask_pseudo_threshold == 'same' else
             self.mask_pseudo_threshold)
        return a, t

    @torch.no_grad()
    def update_teacher(self, student: nn.Module, it: int, alpha: float):
        """Reference order: copy at iteration 0, EMA with the ramp after."""
        if self.teacher is None:
            return
        if it == 0:
            copy_weights(self.teacher, student, buffers=self.copy_buffers)
        else:
            ema_update(self.teacher, student,
                       ema_alpha(it, self.resolve(alpha, 0)[0]),
                       copy_buffers=self.copy_buffers)

    def masked_batch(self, src_img: Tensor, src_gt: Tensor,
                     tgt_img: Optional[Tensor],
                     pseudo: Optional[Tuple[Tensor, Tensor]]
                     ) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
        """(images, labels, pixel weight or None, domain) before masking.

        ``domain`` is 1 for target rows and 0 for source rows (to pick each
        row's normalisation statistics for the strong augmentation).
        """
        mode = self.mask_mode
        if self.source_only or 'src' in mode:
            return src_img, src_gt, None, src_img.new_zeros(len(src_img))
        p_label, p_weight = pseudo
        if 'trg' in mode:
            return tgt_img, p_label, p_weight, tgt_img.new_ones(len(tgt_img))
        # 'separate' / 'separateaug': 1 source + 1 target image
        if src_img.shape[0] != 2:
            raise ValueError(
                f"mask_mode={mode!r} masks the first source and the first "
                'target image, as the reference (which asserts a batch of '
                f'2); got a batch of {src_img.shape[0]}: use batch_size=2 or '
                "mask_mode='separatetrgaug'")
        img = torch.stack([src_img[0], tgt_img[0]])
        lbl = torch.stack([src_gt[0], p_label[0]])
        weight = torch.stack([torch.ones_like(p_weight[0]), p_weight[0]])
        return img, lbl, weight, img.new_tensor([0.0, 1.0])

    def forward(self, src_img: Tensor, src_gt: Tensor,
                tgt_img: Optional[Tensor],
                pseudo: Optional[Tuple[Tensor, Tensor]], src_stats, tgt_stats,
                jitter: dict) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """The masked images with their labels and pixel weights.

        Args:
            jitter (dict): ``color_jitter_strength``, ``color_jitter_prob``
                and ``gate`` of the host.
        """
        img, lbl, weight, domain = self.masked_batch(src_img, src_gt, tgt_img,
                                                     pseudo)
        if 'aug' in self.mask_mode:
            d = domain.view(-1, 1, 1, 1)
            mean = d * tgt_stats[0] + (1 - d) * src_stats[0]
            std = d * tgt_stats[1] + (1 - d) * src_stats[1]
            # one call for the batch (one op order, one sigma) and the blur
            # drawn regardless of the host's `blur`, as the reference's MIC
            img = strong_transform(img, mean, std, blur=True, split='batch',
                                   **jitter)
        keep = block_mask(img.shape, self.block_size,
                          self.mask_ratio).to(img)
        return mask_image(img, keep), lbl, weight
