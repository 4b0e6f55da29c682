"""The CPU part of the device dual-branch augmentation: the ellipse
background image.

With ``data_preprocessor.device_aug=[dict(type='DualBranchAug', ...)]`` the
warps and the ellipse mix of :class:`DualBranchAug` run on the training
device (:mod:`mmplugins.models.uda.batch_dual_branch_aug`). What must stay in
the dataloader worker is the file access: whether this sample gets the
ellipse mix (the ``ellipse_prob`` coin) and, if so, a random target image
decoded and resized to the crop, exactly as ``DualBranchAug`` picks and
resizes it. Place this transform where ``DualBranchAug`` was (after the
crop and flip, before :class:`PackDualBranchSegInputs`).
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmplugins.registry import register_module
from .dual_branch import _check_prob


@register_module('transforms')
class DualBranchBackground(BaseTransform):
    """Draw the ellipse coin and load the background for the device view.

    Required keys: ``img``. Added keys: ``dist_ellipse`` (bool: this
    sample's distortion view gets the ellipse mix) and, when True,
    ``dist_background`` (``img``-sized uint8 BGR target image, resized with
    ``cv2.INTER_LINEAR`` like ``DualBranchAug``). ``PackDualBranchSegInputs``
    puts both into the source data sample (``metainfo['dist_ellipse']``,
    ``dist_background``), where the device ``DualBranchAug`` reads them.

    Args:
        ellipse_prob (float): Probability of the ellipse mix (the
            ``DualBranchAug`` value). Defaults to 0.5.
        target_img_dir (str): Folder of target images (as in
            ``DualBranchAug``; relative paths join ``data_root``).
        target_img_suffix (str | tuple[str]): Image suffixes. Defaults to
            ``('.png', '.jpg', '.jpeg')``.
        data_root (str, optional): Prefix of a relative ``target_img_dir``.

    Raises:
        ValueError: ``ellipse_prob`` outside [0, 1].
        FileNotFoundError: missing or empty ``target_img_dir``.
    """

    def __init__(self,
                 target_img_dir: str,
                 ellipse_prob: float = 0.5,
                 target_img_suffix: Union[str, Sequence[str]] = ('.png',
                                                                 '.jpg',
                                                                 '.jpeg'),
                 data_root: Optional[str] = None):
        self.ellipse_prob = _check_prob('ellipse_prob', ellipse_prob)
        if isinstance(target_img_suffix, str):
            target_img_suffix = (target_img_suffix, )
        self.target_img_suffix = tuple(target_img_suffix)
        self.target_img_dir = target_img_dir
        self.data_root = data_root
        folder = target_img_dir
        if data_root is not None and not osp.isabs(folder):
            folder = osp.join(data_root, folder)
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'DualBranchBackground: target_img_dir {folder!r} is not a '
                'directory')
        self.files: List[str] = sorted(
            osp.join(folder, name) for name in os.listdir(folder)
            if name.lower().endswith(self.target_img_suffix))
        if not self.files:
            raise FileNotFoundError(
                f'DualBranchBackground: no {self.target_img_suffix} images '
                f'in target_img_dir {folder!r}')

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError("DualBranchBackground needs results['img']")
        mix = bool(np.random.rand() < self.ellipse_prob)
        results['dist_ellipse'] = mix
        if mix:
            path = self.files[np.random.randint(len(self.files))]
            target = mmcv.imread(path)  # bgr, like LoadImageFromFile
            if target is None:
                raise FileNotFoundError(
                    f'DualBranchBackground: cannot read {path!r}')
            h, w = results['img'].shape[:2]
            background = cv2.resize(target, (w, h),
                                    interpolation=cv2.INTER_LINEAR)
            if results['img'].ndim == 2:
                background = cv2.cvtColor(background, cv2.COLOR_BGR2GRAY)
            results['dist_background'] = background.astype(
                results['img'].dtype)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ellipse_prob={self.ellipse_prob}, '
                f'target_img_dir={self.target_img_dir!r})')
