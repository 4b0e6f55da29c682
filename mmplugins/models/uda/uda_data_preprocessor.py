"""Data preprocessor for (source, distortion view, target) UDA batches."""
from contextlib import contextmanager
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.structures import SegDataSample

from mmplugins.registry import register_module
from .batch_dual_branch_aug import BatchDualBranchAug
from .device_aug import build_device_aug

#: key prefixes of the groups in a UDA batch (see docs/uda.md)
UDA_GROUPS = ('', 'dist_', 'target_')


@register_module('models', toolboxes=('mmseg', ))
class UDADataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` applied to each group of a UDA batch.

    A UDA batch (from :class:`~mmplugins.datasets.UDADataset`) holds the
    source (``inputs``/``data_samples``), optionally its distortion view
    (``dist_inputs``/``dist_data_samples``, from ``DualBranchAug``) and the
    target (``target_inputs``/``target_data_samples``). Each group is
    normalised, padded to ``size`` and stacked like mmseg does for one group.
    A plain batch (validation/test) is processed exactly like mmseg.

    When the target samples carry ``valid_pseudo_mask`` (the target dataset's
    ``crop_pseudo_margins``, see
    :mod:`mmplugins.datasets.transforms.valid_pseudo_mask`), each mask is
    padded like the target images (bottom/right, the padded area invalid)
    and the batch gets ``target_valid_pseudo_mask``: (N, H, W) bool.

    Args:
        target_mean (Sequence[float], optional): Per-domain normalisation:
            mean of the target camera (the 2023 solution measured source and
            target statistics separately). Defaults to ``mean``.
        target_std (Sequence[float], optional): Target std. Defaults to
            ``std``.
        test_domain (str): Statistics used for val/test batches, ``'target'``
            (default: we evaluate on the target camera) or ``'source'``.
        device_aug (list[dict], optional): Source-pipeline transforms moved
            to the training device, as written in the pipeline (e.g.
            ``[dict(type='DualBranchAug', ...)]``; supported types and
            errors: :mod:`mmplugins.models.uda.device_aug`). They run on
            training UDA batches, before normalisation, in list order:
            ``FisheyeDistortion`` warps the source images and labels,
            ``DualBranchAug`` adds ``dist_inputs`` / ``dist_data_samples``
            exactly as the CPU pipeline would pack them. None (default):
            everything stays in the dataloader (bit-identical to before).
        **kwargs: All arguments of mmseg's ``SegDataPreProcessor``.
    """

    def __init__(self,
                 target_mean: Optional[Sequence[float]] = None,
                 target_std: Optional[Sequence[float]] = None,
                 test_domain: str = 'target',
                 device_aug: Optional[Sequence[dict]] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.device_aug: List[object] = [] if device_aug is None else \
            build_device_aug(device_aug)
        if (target_mean is None) != (target_std is None):
            raise ValueError('UDADataPreProcessor: give both target_mean and '
                             f'target_std or neither, got {target_mean} / '
                             f'{target_std}')
        if test_domain not in ('source', 'target'):
            raise ValueError("test_domain must be 'source' or 'target', got "
                             f'{test_domain!r}')
        if target_mean is not None and not self._enable_normalize:
            raise ValueError('target_mean/target_std need mean/std as well')
        self.per_domain = target_mean is not None
        self.test_domain = test_domain
        if self.per_domain:
            self.register_buffer(
                'target_mean',
                torch.tensor(target_mean).view(-1, 1, 1), False)
            self.register_buffer('target_std',
                                 torch.tensor(target_std).view(-1, 1, 1),
                                 False)

    def domain_stats(self, domain: str):
        """(mean, std) as (1, C, 1, 1) tensors for 'source' or 'target'."""
        if domain == 'target' and self.per_domain:
            return self.target_mean[None], self.target_std[None]
        if not self._enable_normalize:
            one = torch.ones(1, 3, 1, 1, device=self.device)
            return one * 0, one
        return self.mean[None], self.std[None]

    @contextmanager
    def _use_domain(self, domain: str):
        if domain != 'target' or not self.per_domain:
            yield
            return
        mean, std = self.mean, self.std
        self.mean, self.std = self.target_mean, self.target_std
        try:
            yield
        finally:
            self.mean, self.std = mean, std

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        if not training and 'target_inputs' not in data:
            # val / test batch. A training batch without a target (source-
            # only UDA) keeps its groups: source statistics, distortion view
            with self._use_domain(self.test_domain):
                return super().forward(data, training)
        if training and self.device_aug:
            data = self._augment_on_device(dict(data))
        out: Dict[str, Any] = {}
        for prefix in UDA_GROUPS:
            if prefix + 'inputs' not in data:
                continue
            group = dict(inputs=data[prefix + 'inputs'],
                         data_samples=data.get(prefix + 'data_samples'))
            domain = 'target' if prefix == 'target_' else 'source'
            with self._use_domain(domain):
                res = super().forward(group, training)
            out[prefix + 'inputs'] = res['inputs']
            out[prefix + 'data_samples'] = res['data_samples']
            if prefix == 'target_':
                mask = self._valid_pseudo_mask(res['data_samples'],
                                               res['inputs'].shape[-2:])
                if mask is not None:
                    out['target_valid_pseudo_mask'] = mask
        return out

    def _augment_on_device(self, data: dict) -> dict:
        """Run ``device_aug`` on the source group of a training batch."""
        inputs, samples = data['inputs'], data['data_samples']
        shapes = {tuple(x.shape) for x in inputs}
        if len(shapes) != 1:
            raise ValueError(
                'UDADataPreProcessor.device_aug needs equal-size source '
                f'crops in a batch, but got image shapes {sorted(shapes)}')
        imgs = torch.stack(list(inputs)).to(self.device).float()
        segs = torch.stack([s.gt_sem_seg.data[0] for s in samples]).to(
            self.device)
        for aug in self.device_aug:
            if not isinstance(aug, BatchDualBranchAug):
                imgs, segs = aug(imgs, segs)
                for s, seg in zip(samples, segs):
                    s.gt_sem_seg = PixelData(data=seg[None])
                continue
            if 'dist_inputs' in data:
                raise ValueError(
                    'UDADataPreProcessor.device_aug has DualBranchAug, but '
                    'the batch already holds dist_inputs: remove '
                    'DualBranchAug from the CPU source pipeline (or from '
                    'device_aug)')
            ellipse, background = self._backgrounds(aug, samples)
            dist_img, dist_seg = aug(imgs, segs, ellipse, background)
            data['dist_inputs'] = list(dist_img)
            dist_samples = []
            for s, seg in zip(samples, dist_seg):
                d = SegDataSample(metainfo=s.metainfo)
                d.gt_sem_seg = PixelData(data=seg[None])
                dist_samples.append(d)
            data['dist_data_samples'] = dist_samples
            for s in samples:  # consumed: the segmentor gets what it got
                if 'dist_background' in s:
                    del s.dist_background
        data['inputs'] = list(imgs)
        return data

    @staticmethod
    def _backgrounds(aug: BatchDualBranchAug, samples):
        """The CPU's ellipse coins and backgrounds (DualBranchBackground),
        or (None, None) when the device draws the coin itself."""
        if not aug.background_from_cpu:
            return None, None
        if not all('dist_ellipse' in s.metainfo for s in samples):
            raise ValueError(
                'device DualBranchAug with target_img_dir: the source '
                "samples carry no 'dist_ellipse'; add dict(type="
                "'DualBranchBackground', target_img_dir=..., ellipse_prob=...)"
                ' to the source pipeline where DualBranchAug was')
        ellipse = torch.tensor([bool(s.metainfo['dist_ellipse'])
                                for s in samples])
        background = [s.dist_background.data if 'dist_background' in s
                      else None for s in samples]
        return ellipse, background

    @staticmethod
    def _valid_pseudo_mask(samples, size) -> Optional[torch.Tensor]:
        """Pad each sample's ``valid_pseudo_mask`` to ``size`` (bottom/
        right, with 0 = invalid, as the images are padded) and stack them
        to (N, H, W) bool; None when no sample has one."""
        samples = samples or []
        has = ['valid_pseudo_mask' in s for s in samples]
        if not any(has):
            return None
        if not all(has):
            raise ValueError(
                'UDADataPreProcessor: only some target samples carry '
                f'valid_pseudo_mask ({sum(has)} of {len(has)}); every target '
                'sample must come from the same pipeline')
        h, w = size
        masks = []
        for s in samples:
            m = s.valid_pseudo_mask.data
            if m.dim() == 2:
                m = m[None]
            mh, mw = m.shape[-2:]
            if mh > h or mw > w:
                raise ValueError(
                    f'UDADataPreProcessor: valid_pseudo_mask of '
                    f'{s.metainfo.get("img_path")!r} is {mh}x{mw}, larger '
                    f'than the padded target batch {h}x{w}')
            m = F.pad(m, (0, w - mw, 0, h - mh), value=0)
            s.valid_pseudo_mask = PixelData(data=m)
            masks.append(m[0] == 1)
        return torch.stack(masks)
