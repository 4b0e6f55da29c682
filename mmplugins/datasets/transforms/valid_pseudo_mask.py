"""Pseudo-label margins on the full target image (HRDA crop_pseudo_margins).

The reference (HRDA, and MIC(HRDA)) does not trust the teacher's
pseudo-labels near the borders of a target *image* (Cityscapes' rectification
artefacts: ``crop_pseudo_margins=[30, 240, 30, 30]`` on 2048x1024 frames). It
builds a mask on the full image right after loading -- 1 inside, 0 in the
``[top, bottom, left, right]`` margins -- and lets it go through the same
geometric transforms as a label map, so after resize/crop/flip a margin is
masked only where the crop touches the image border. The UDA step multiplies
the pseudo-label weight by it.

Here:

- :class:`ValidPseudoMask` builds ``results['valid_pseudo_mask']`` right after
  ``LoadImageFromFile`` and appends it to ``results['seg_fields']``; mmseg
  1.x ``Resize``/``RandomResize``/``RandomCrop``/``RandomFlip``/
  ``RandomRotate`` (and mmplugins' ``FisheyeDistortion``) transform every
  seg field like ``gt_seg_map``.
- :class:`PackValidPseudoMask` wraps the pipeline's packer (``PackSegInputs``
  or another) and adds ``data_samples.valid_pseudo_mask`` (``PixelData``,
  ``1xHxW`` uint8, 1 = valid). Only the value 1 counts as valid, so pixels a
  transform filled with a pad value (``RandomRotate``'s 255) are invalid; a
  mask smaller than the image (mmcv ``Pad`` pads only ``gt_seg_map``) is
  padded at the bottom/right with 0, as ``Pad`` padded the image.
- ``UDADataset(target=dict(..., crop_pseudo_margins=[t, b, l, r]))`` (the
  reference's key) inserts both into the target pipeline:
  :func:`add_valid_pseudo_mask`.
"""
from typing import List, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from mmplugins.registry import register_module

#: the reference's dataset key; named in the error messages
MARGINS_KEY = 'crop_pseudo_margins'
MASK_KEY = 'valid_pseudo_mask'


def check_margins(margins, where: str = MARGINS_KEY) -> List[int]:
    """``margins`` as ``[top, bottom, left, right]`` non-negative ints.

    Raises:
        ValueError: not a sequence of exactly 4 non-negative ints.
    """
    ok = isinstance(margins, (list, tuple)) and len(margins) == 4 and all(
        isinstance(m, (int, np.integer)) and not isinstance(m, bool)
        and m >= 0 for m in margins)
    if not ok:
        raise ValueError(
            f'{where} must be 4 non-negative ints [top, bottom, left, right] '
            f'(pixels of the full target image), but got {margins!r}')
    return [int(m) for m in margins]


def margin_mask(height: int, width: int, margins: Sequence[int],
                where: str = '') -> np.ndarray:
    """``HxW`` uint8 mask: 1 inside, 0 in the ``[t, b, l, r]`` margins.

    Raises:
        ValueError: the margins leave no valid pixel (``t + b >= H`` or
            ``l + r >= W``); the message names ``where`` (the image).
    """
    top, bottom, left, right = margins
    if top + bottom >= height or left + right >= width:
        raise ValueError(
            f'{MARGINS_KEY}={list(margins)} ([top, bottom, left, right]) '
            f'cover the whole image {where}of {height}x{width} (HxW): '
            f'top + bottom = {top + bottom}, left + right = {left + right}; '
            'no pseudo-label pixel would be trained on. Margins are in the '
            'pixels of the image as loaded, before any resize/crop')
    mask = np.zeros((height, width), np.uint8)
    mask[top:height - bottom, left:width - right] = 1
    return mask


@register_module('transforms')
class ValidPseudoMask(BaseTransform):
    """Mask of the pixels whose pseudo-labels are trusted, on the full image.

    Put it right after ``LoadImageFromFile`` of the *target* pipeline, before
    any geometric transform, and pack with :class:`PackValidPseudoMask`.
    ``UDADataset(target=dict(..., crop_pseudo_margins=...))`` does both.

    Required keys: ``img``. Optional: ``img_path`` (named in errors),
    ``seg_fields``.
    Added keys: ``valid_pseudo_mask`` (``HxW`` uint8, 1 valid, 0 margin);
    ``'valid_pseudo_mask'`` appended to ``seg_fields``.

    Args:
        margins (list[int]): ``[top, bottom, left, right]`` in pixels of the
            image as loaded (the reference's ``crop_pseudo_margins``).

    Raises:
        ValueError: (at construction) not 4 non-negative ints; (when called)
            the margins cover the whole image.
    """

    def __init__(self, margins: Sequence[int]) -> None:
        self.margins = check_margins(margins)

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError('ValidPseudoMask needs results["img"]: put it '
                           'right after LoadImageFromFile')
        h, w = results['img'].shape[:2]
        where = f'{results.get("img_path")!r} ' if 'img_path' in results \
            else ''
        results[MASK_KEY] = margin_mask(h, w, self.margins, where)
        fields = results.setdefault('seg_fields', [])
        if MASK_KEY not in fields:
            fields.append(MASK_KEY)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(margins={self.margins})'


@register_module('transforms', toolboxes=('mmseg', ))
class PackValidPseudoMask(BaseTransform):
    """Run ``packer`` and add the transformed mask to the packed data sample.

    Output: what ``packer`` returns, with ``data_samples.valid_pseudo_mask``
    = ``PixelData(data=1xHxW uint8)`` (1 where ``results['valid_pseudo_mask']
    == 1``, else 0), ``H, W`` the packed image's size.

    Args:
        packer (dict | callable): The packing transform (config or object).
            Defaults to ``dict(type='PackSegInputs')``.

    Raises:
        KeyError: (when called) no ``valid_pseudo_mask`` in the results.
        ValueError: (when called) the mask is larger than the image (a
            transform changed the image but not the seg fields).
    """

    def __init__(self, packer: Union[dict, BaseTransform, None] = None):
        if packer is None:
            packer = dict(type='PackSegInputs')
        if isinstance(packer, dict):
            from mmseg.registry import TRANSFORMS
            packer = TRANSFORMS.build(packer)
        if not callable(packer):
            raise TypeError('PackValidPseudoMask: packer must be a transform '
                            f'config or a callable, got {type(packer)}')
        self.packer = packer

    def transform(self, results: dict) -> dict:
        where = repr(results.get('img_path', '<no img_path>'))
        if MASK_KEY not in results:
            raise KeyError(
                f'PackValidPseudoMask: no "{MASK_KEY}" for image {where}; put '
                f'ValidPseudoMask(margins=...) right after LoadImageFromFile '
                f'(or give the target dataset {MARGINS_KEY}=[t, b, l, r])')
        mask = (np.asarray(results[MASK_KEY]) == 1).astype(np.uint8)
        img_h, img_w = results['img'].shape[:2]
        h, w = mask.shape[:2]
        if mask.ndim != 2 or h > img_h or w > img_w:
            raise ValueError(
                f'PackValidPseudoMask: image {where}: {MASK_KEY} has shape '
                f'{mask.shape} but the image is {img_h}x{img_w}; a transform '
                "changed the image without its results['seg_fields']")
        if (h, w) != (img_h, img_w):
            # mmcv Pad pads img and gt_seg_map only, at the bottom/right
            mask = np.pad(mask, ((0, img_h - h), (0, img_w - w)))
        packed = self.packer(results)
        packed['data_samples'].valid_pseudo_mask = PixelData(
            data=torch.from_numpy(mask)[None])
        return packed

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(packer={self.packer!r})'


def _step_type(step) -> str:
    t = step.get('type') if isinstance(step, dict) else type(step)
    if isinstance(t, type):
        return t.__name__
    return str(t).rsplit('.', 1)[-1]


def add_valid_pseudo_mask(pipeline: Sequence, margins,
                          where: str = 'target') -> list:
    """The target ``pipeline`` with the margin mask built and packed.

    ``ValidPseudoMask(margins)`` goes right after the first image-loading
    step (type ``LoadImage*``), the last step (the packer) is wrapped in
    ``PackValidPseudoMask``.

    Raises:
        ValueError: bad margins; no loading step; the pipeline already
            builds the mask.
    """
    margins = check_margins(margins, f'{where}.{MARGINS_KEY}')
    steps = list(pipeline)
    types = [_step_type(s) for s in steps]
    if 'ValidPseudoMask' in types or 'PackValidPseudoMask' in types:
        raise ValueError(
            f'{where}: give {MARGINS_KEY} or ValidPseudoMask/'
            'PackValidPseudoMask in the pipeline, not both')
    load = next((i for i, t in enumerate(types) if t.startswith('LoadImage')),
                None)
    if load is None or load == len(steps) - 1:
        raise ValueError(
            f'{where}.{MARGINS_KEY} needs a pipeline that loads the image '
            f'(LoadImageFromFile) and ends with a packer (PackSegInputs); got '
            f'the steps {types}')
    steps.insert(load + 1, dict(type='ValidPseudoMask', margins=margins))
    steps[-1] = dict(type='PackValidPseudoMask', packer=steps[-1])
    return steps


def check_pipeline(pipeline: Sequence, where: str = 'target') -> None:
    """A pipeline with ``ValidPseudoMask`` must pack it (last step).

    Raises:
        ValueError: ``ValidPseudoMask`` without ``PackValidPseudoMask`` as
            the last step (the mask would be silently dropped).
    """
    types = [_step_type(s) for s in pipeline]
    if 'ValidPseudoMask' in types and (
            not types or types[-1] != 'PackValidPseudoMask'):
        raise ValueError(
            f'{where}: the pipeline builds ValidPseudoMask but does not pack '
            'it; end it with dict(type="PackValidPseudoMask", packer='
            f'dict(type="PackSegInputs")); got the steps {types}')
