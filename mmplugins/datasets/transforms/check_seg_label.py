"""Fail early and clearly on a broken segmentation label.

A label map with the wrong size or with ids the model has no class for does
not crash mmseg where it is read: it crashes much later inside the loss (a
CUDA device-side assert, or a silently wrong metric). This transform checks
each pair right after ``LoadAnnotations`` and names the files.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmplugins.registry import register_module


def invalid_label_ids(seg_map: np.ndarray, num_classes: int,
                      ignore_index: Optional[int] = 255) -> np.ndarray:
    """Return the sorted ids of ``seg_map`` outside ``[0, num_classes)``.

    ``ignore_index`` (when not None) counts as valid.
    """
    if seg_map.dtype == np.uint8:  # the usual case; bincount beats a sort
        values = np.flatnonzero(np.bincount(seg_map.ravel(), minlength=256))
    else:
        values = np.unique(seg_map)
    bad = (values < 0) | (values >= num_classes)
    if ignore_index is not None:
        bad &= values != ignore_index
    return values[bad]


@register_module('transforms')
class CheckSegLabel(BaseTransform):
    """Check that ``gt_seg_map`` matches its image and the class range.

    Put it right after ``LoadAnnotations`` (before any geometric
    transform). The size is compared with ``ori_shape`` (the image as read,
    set by ``LoadImageFromFile``), falling back to ``img.shape``, so it also
    works in test pipelines where ``Resize`` runs before ``LoadAnnotations``.

    Required keys: ``gt_seg_map``, ``ori_shape`` or ``img``.
    Optional keys: ``img_path``, ``seg_map_path`` (named in the error).
    Modified keys: none.

    Note:
        An *unlabelled* image -- no ``seg_map_path`` and no ``gt_seg_map``,
        as mmseg's ``inference_model`` / ``MMSegInferencer`` and
        ``tools/predict.py`` feed the test pipeline after dropping
        ``LoadAnnotations`` -- passes unchanged. A sample that names a
        label file but has no loaded label (the transform placed before
        ``LoadAnnotations``) still raises.

    Args:
        num_classes (int): Valid ids are ``0 .. num_classes - 1``.
        ignore_index (int, optional): One more valid id (the background).
            Defaults to 255. None allows none.

    Raises:
        ValueError: (when called) the label's height/width differ from the
            image's, or it holds ids other than the valid ones; the message
            names ``img_path`` and ``seg_map_path``.
        KeyError: (when called) the sample names a ``seg_map_path`` but
            has no ``gt_seg_map`` to check.
    """

    def __init__(self, num_classes: int,
                 ignore_index: Optional[int] = 255) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError('CheckSegLabel: num_classes must be a positive '
                             f'int, but got {num_classes!r}')
        if ignore_index is not None and (not isinstance(ignore_index, int)
                                         or 0 <= ignore_index < num_classes):
            raise ValueError(
                'CheckSegLabel: ignore_index must be None or an int outside '
                f'[0, {num_classes}), but got {ignore_index!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        where = (f'image {results.get("img_path")!r} / label '
                 f'{results.get("seg_map_path")!r}')
        if 'gt_seg_map' not in results:
            if results.get('seg_map_path') is None:
                return results  # an unlabelled image: nothing to check
            raise KeyError(f'CheckSegLabel: no "gt_seg_map" for {where}; put '
                           f'it after LoadAnnotations')
        seg = results['gt_seg_map']
        if 'ori_shape' in results:
            img_hw = tuple(results['ori_shape'][:2])
        else:
            img_hw = tuple(results['img'].shape[:2])
        if tuple(seg.shape[:2]) != img_hw or seg.ndim != 2:
            raise ValueError(
                f'CheckSegLabel: {where}: label shape {tuple(seg.shape)} '
                f'differs from the image size {img_hw}; expected an HxW '
                f'single-channel label of the image size')
        bad = invalid_label_ids(seg, self.num_classes, self.ignore_index)
        if bad.size:
            allowed = f'0..{self.num_classes - 1}'
            if self.ignore_index is not None:
                allowed += f' or {self.ignore_index}'
            raise ValueError(
                f'CheckSegLabel: {where}: label ids {bad.tolist()[:10]} are '
                f'outside the class range; expected {allowed}')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
