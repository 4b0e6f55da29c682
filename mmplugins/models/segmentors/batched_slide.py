"""Batched sliding-window inference (same logits as mmseg, fewer forwards).

mmseg ``EncoderDecoder.slide_inference`` runs one network forward per window
position (all images of the batch at once, but one window at a time).
:func:`batched_slide_inference` cuts the same windows, runs them through the
network ``batch_size`` crops at a time and accumulates them in the same
order, so the logits match the stock sequential ones (up to float noise of
batched kernels) while the per-forward overhead is paid far fewer times.

The pure function is the reference semantics and is what other segmentors
(e.g. the UDA segmentor) call; :class:`BatchedSlideEncoderDecoder` is a
drop-in ``EncoderDecoder`` that uses it when ``test_cfg`` has
``batch_size``.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor

from mmplugins.registry import register_module


def slide_windows(h_img: int, w_img: int, crop_size: Tuple[int, int],
                  stride: Tuple[int, int]) -> List[Tuple[int, int, int, int]]:
    """Window boxes ``(y1, y2, x1, x2)`` in mmseg's slide order.

    Identical to ``EncoderDecoder.slide_inference``: row-major grid with
    ``max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1`` rows (same for
    columns); the last row/column is shifted back to end at the border, and
    a crop larger than the image is clipped to it (no padding).
    """
    h_crop, w_crop = crop_size
    h_stride, w_stride = stride
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    boxes = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1 = h_idx * h_stride
            x1 = w_idx * w_stride
            y2 = min(y1 + h_crop, h_img)
            x2 = min(x1 + w_crop, w_img)
            y1 = max(y2 - h_crop, 0)
            x1 = max(x2 - w_crop, 0)
            boxes.append((y1, y2, x1, x2))
    return boxes


def _pair(name: str, value) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and v > 0 for v in value)):
        raise ValueError(f'{name} must be a positive int or a pair of '
                         f'positive ints (h, w), but got {name}={value!r}')
    return int(value[0]), int(value[1])


def check_batch_size(batch_size) -> Optional[int]:
    """Validate ``batch_size`` (None = all crops in one forward)."""
    if batch_size is not None and not (
            isinstance(batch_size, int) and not isinstance(batch_size, bool)
            and batch_size >= 1):
        raise ValueError('batch_size must be None (all crops at once) or an '
                         f'int >= 1, but got batch_size={batch_size!r}')
    return batch_size


def batched_slide_inference(encode_decode_fn: Callable[[Tensor, List[dict]],
                                                       Tensor],
                            inputs: Tensor,
                            batch_img_metas: Sequence[dict],
                            crop_size: Sequence[int],
                            stride: Sequence[int],
                            out_channels: int,
                            batch_size: Optional[int] = None) -> Tensor:
    """Sliding-window inference with the crops batched through the network.

    Args:
        encode_decode_fn (Callable): ``fn(crops, crop_metas) -> logits``:
            ``crops`` is ``(B, C, h, w)``, ``crop_metas`` a list of ``B``
            dicts (copies of the owning image's meta with ``img_shape`` set
            to the crop's ``torch.Size``, which mmseg decode heads resize
            to), and the result ``(B, out_channels, h, w)``. Typically
            ``segmentor.encode_decode``.
        inputs (Tensor): ``(N, C, H, W)`` images.
        batch_img_metas (Sequence[dict]): ``N`` image metas. Not modified
            (the stock method overwrites ``batch_img_metas[0]['img_shape']``
            with the last crop shape; nothing downstream reads it).
        crop_size (Sequence[int]): ``(h_crop, w_crop)``.
        stride (Sequence[int]): ``(h_stride, w_stride)``.
        out_channels (int): Channels of the logits (``num_classes``, or 1
            for binary sigmoid heads).
        batch_size (int, optional): Crops per forward, counted over all
            ``N`` images. None = every crop in one forward. 1 reproduces the
            stock memory profile per crop.

    Returns:
        Tensor: ``(N, out_channels, H, W)`` logits averaged over the
        overlapping windows, as ``EncoderDecoder.slide_inference``.
    """
    h_crop, w_crop = _pair('crop_size', tuple(crop_size))
    h_stride, w_stride = _pair('stride', tuple(stride))
    batch_size = check_batch_size(batch_size)
    if inputs.dim() != 4:
        raise ValueError('inputs must be (N, C, H, W), but got shape '
                         f'{tuple(inputs.shape)}')
    num_imgs, _, h_img, w_img = inputs.shape
    if len(batch_img_metas) != num_imgs:
        raise ValueError(f'batch_img_metas has {len(batch_img_metas)} '
                         f'entries for {num_imgs} images')
    boxes = slide_windows(h_img, w_img, (h_crop, w_crop),
                          (h_stride, w_stride))
    # window-major, image-minor: each image accumulates its windows in the
    # stock order, so the float sums are performed in the same order
    jobs = [(box, n) for box in boxes for n in range(num_imgs)]
    chunk = len(jobs) if batch_size is None else batch_size

    preds = inputs.new_zeros((num_imgs, out_channels, h_img, w_img))
    count_mat = inputs.new_zeros((1, 1, h_img, w_img))
    for y1, y2, x1, x2 in boxes:
        count_mat[:, :, y1:y2, x1:x2] += 1
    # all windows share one shape: min(crop, image) per side
    crop_shape = torch.Size((min(h_crop, h_img), min(w_crop, w_img)))
    for start in range(0, len(jobs), chunk):
        part = jobs[start:start + chunk]
        crops = torch.stack([
            inputs[n, :, y1:y2, x1:x2] for (y1, y2, x1, x2), n in part
        ])
        metas = [
            dict(batch_img_metas[n], img_shape=crop_shape) for _, n in part
        ]
        logits = encode_decode_fn(crops, metas)
        for ((y1, y2, x1, x2), n), logit in zip(part, logits):
            preds[n, :, y1:y2, x1:x2] += logit
    if (count_mat == 0).any():  # cannot happen with the grid above
        raise RuntimeError('slide windows do not cover the image')
    return preds / count_mat


@register_module('models', toolboxes=('mmseg', ))
class BatchedSlideEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` whose slide inference batches the crops.

    Identical to ``EncoderDecoder`` (same arguments, weights and training)
    except that ``test_cfg=dict(mode='slide', crop_size=..., stride=...,
    batch_size=B)`` runs :func:`batched_slide_inference` with ``B`` crops
    per forward (``batch_size=None`` in the dict: all crops at once).
    Without the ``batch_size`` key it falls back to the stock sequential
    method, so a checkpoint and config of ``EncoderDecoder`` work unchanged
    after switching ``type``.

    Example::

        model = dict(type='BatchedSlideEncoderDecoder', ...,
                     test_cfg=dict(mode='slide', crop_size=(512, 512),
                                   stride=(341, 341), batch_size=8))
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.test_cfg is not None and 'batch_size' in self.test_cfg:
            check_batch_size(self.test_cfg['batch_size'])

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        if 'batch_size' not in self.test_cfg:
            return super().slide_inference(inputs, batch_img_metas)
        return batched_slide_inference(
            self.encode_decode,
            inputs,
            batch_img_metas,
            crop_size=self.test_cfg['crop_size'],
            stride=self.test_cfg['stride'],
            out_channels=self.out_channels,
            batch_size=self.test_cfg['batch_size'])
