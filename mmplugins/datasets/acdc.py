"""ACDC (Sakaridis et al., ICCV 2021): adverse-condition driving, the target
of the Cityscapes->ACDC benchmark.

ACDC ships ``rgb_anon_trainvaltest.zip`` and ``gt_trainval.zip`` as
``{rgb_anon,gt}/CONDITION/SPLIT/SEQUENCE/`` with the four conditions fog,
night, rain and snow (1080x1920 frames; the labels include
``*_gt_labelTrainIds.png``, Cityscapes' 19 train ids). The reference
(DAFormer/HRDA/MIC) flattens conditions and sequences into one folder per
split (its README's ``rsync`` commands;
``tools/dataset_converters/acdc.py`` here)::

    data/acdc/
    ├── rgb_anon/train/GOPR0475_frame_000041_rgb_anon.png ...
    │            val/ ...  test/ ...
    └── gt/train/GOPR0475_frame_000041_gt_labelTrainIds.png ...
           val/ ...                     # test labels: on the server only

:class:`ACDCDataset` reads that layout (``data_prefix=dict(img_path=
'rgb_anon/train', seg_map_path='gt/train')``) with Cityscapes' classes.
The reference's ``valid_mask_size=[1080, 1920]`` has no counterpart: the
pseudo-label margin mask (``crop_pseudo_margins``) is built here on the
image as loaded (:mod:`mmplugins.datasets.transforms.valid_pseudo_mask`).
"""
import os.path as osp

from mmseg.datasets import CityscapesDataset

from mmplugins.registry import register_module

#: the four adverse conditions, as ACDC's folder names
ACDC_CONDITIONS = ('fog', 'night', 'rain', 'snow')
#: the splits the reference flattens (test has no public labels)
ACDC_SPLITS = ('train', 'val', 'test')
#: (height, width) of every ACDC frame
ACDC_IMAGE_SIZE = (1080, 1920)
ACDC_IMG_SUFFIX = '_rgb_anon.png'
ACDC_SEG_SUFFIX = '_gt_labelTrainIds.png'


@register_module('datasets', toolboxes=('mmseg', ))
class ACDCDataset(CityscapesDataset):
    """ACDC in the reference's flattened layout, Cityscapes' 19 classes.

    Args:
        img_suffix (str): Defaults to ``'_rgb_anon.png'``.
        seg_map_suffix (str): Defaults to ``'_gt_labelTrainIds.png'``
            (ACDC's own train-id labels).
        **kwargs: :class:`mmseg.datasets.CityscapesDataset` arguments, e.g.
            ``data_root='data/acdc'``, ``data_prefix=dict(img_path=
            'rgb_anon/val', seg_map_path='gt/val')``; the test split has no
            ``seg_map_path``.

    Note:
        A missing image/label folder is one error naming it; if the root
        still has ACDC's per-condition layout (``rgb_anon/fog/...``) the
        error says to run ``tools/dataset_converters/acdc.py``. Images
        without a label (when ``seg_map_path`` is set) are one error naming
        the first.
    """

    def __init__(self,
                 img_suffix: str = ACDC_IMG_SUFFIX,
                 seg_map_suffix: str = ACDC_SEG_SUFFIX,
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         **kwargs)

    def load_data_list(self):
        root = self.data_root or 'data/acdc'
        for key in ('img_path', 'seg_map_path'):
            folder = self.data_prefix.get(key)
            if not folder or osp.isdir(folder):
                continue
            raw = [c for c in ACDC_CONDITIONS
                   if osp.isdir(osp.join(root, 'rgb_anon', c))]
            absent = [osp.join(root, 'rgb_anon', c) for c in ACDC_CONDITIONS
                      if c not in raw]
            hint = (f'{root} has ACDC\'s per-condition layout (rgb_anon/'
                    f'{raw[0]}/...): run `python tools/dataset_converters/'
                    f'acdc.py {root}` to flatten it' + (
                        f' (condition folders missing: {", ".join(absent)})'
                        if absent else '') if raw else
                    f'expected the flattened layout {root}/rgb_anon/SPLIT/'
                    f'*{ACDC_IMG_SUFFIX} and {root}/gt/SPLIT/'
                    f'*{ACDC_SEG_SUFFIX} (tools/dataset_converters/acdc.py)')
            raise FileNotFoundError(
                f'ACDCDataset: {folder} is not a folder; {hint}')
        data_list = super().load_data_list()
        if self.data_prefix.get('seg_map_path'):
            missing = [d['seg_map_path'] for d in data_list
                       if not osp.exists(d['seg_map_path'])]
            if missing:
                raise FileNotFoundError(
                    f'ACDCDataset: {len(missing)} of {len(data_list)} images '
                    f'have no label (first: {missing[0]}); the test split '
                    'has none: leave out seg_map_path for it')
        return data_list
