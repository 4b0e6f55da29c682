"""Pack a dual-branch sample: mmseg ``PackSegInputs`` + the distortion view."""
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs

from mmplugins.registry import register_module

#: results key of the distortion view -> key ``PackSegInputs`` reads
DIST_KEYS = {'dist_img': 'img', 'dist_gt_seg_map': 'gt_seg_map'}


@register_module('transforms', toolboxes=('mmseg', ))
class PackDualBranchSegInputs(PackSegInputs):
    """mmseg ``PackSegInputs`` that also packs the :class:`DualBranchAug` view.

    Output keys: ``inputs`` and ``data_samples`` exactly as
    ``PackSegInputs``; when ``results['dist_img']`` exists, also
    ``dist_inputs`` (``CxHxW`` uint8 tensor) and ``dist_data_samples``
    (``SegDataSample`` whose ``gt_sem_seg`` holds ``dist_gt_seg_map`` when
    present, and the same metainfo as ``data_samples``). Without the
    ``dist_*`` keys (e.g. in the test pipeline) it behaves like
    ``PackSegInputs``, so one packer serves both pipelines. With
    :class:`DualBranchBackground` in the pipeline (the device dual-branch
    view) the source data sample also gets ``metainfo['dist_ellipse']``
    and, when True, ``dist_background`` (``CxHxW`` uint8 ``PixelData``).

    Args:
        meta_keys (Sequence[str]): Meta keys copied into both data samples.
            Defaults to those of mmseg ``PackSegInputs``.

    Note:
        The UDA data preprocessor normalises the ``dist_`` group with the
        source mean/std; see ``docs/dual_branch.md``.
    """

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'dist_ellipse' in results:
            # DualBranchBackground (device dual-branch view): the ellipse
            # coin and background travel in the source data sample
            self._pack_background(packed['data_samples'], results)
        if 'dist_img' not in results:
            return packed
        # pack the view with the parent's code path, so both branches get
        # identical tensor layout, dtype and metainfo
        view = {key: results[key] for key in self.meta_keys if key in results}
        for src, dst in DIST_KEYS.items():
            if src in results:
                view[dst] = results[src]
        dist = super().transform(view)
        packed['dist_inputs'] = dist['inputs']
        packed['dist_data_samples'] = dist['data_samples']
        return packed

    @staticmethod
    def _pack_background(data_sample, results: dict) -> None:
        data_sample.set_metainfo(
            dict(dist_ellipse=bool(results['dist_ellipse'])))
        if 'dist_background' in results:
            bg = np.asarray(results['dist_background'])
            if bg.ndim == 2:
                bg = bg[..., None]
            data_sample.dist_background = PixelData(
                data=torch.from_numpy(
                    np.ascontiguousarray(bg.transpose(2, 0, 1))))
