"""SYNTHIA (RAND-CITYSCAPES, Ros et al., CVPR 2016) as a UDA *source* for
Cityscapes.

SYNTHIA-RAND-CITYSCAPES ships ``RGB/*.png`` and ``GT/LABELS/*.png``, the
latter 16-bit, 3-channel PNGs whose *first* (red) channel holds SYNTHIA's
own class ids (0 void, 1 sky, 2 building, 3 road, ... 22 lanemarking) and
whose second holds instance ids. As DAFormer/HRDA/MIC do, the labels are
converted once to the 19 Cityscapes *train ids* (255 = ignore) next to the
originals (``tools/dataset_converters/synthia.py``)::

    data/synthia/
    ├── RGB/0000000.png ...
    └── GT/LABELS/0000000.png                  # SYNTHIA ids (original)
                  0000000_labelTrainIds.png    # train ids (converted)

:class:`SynthiaDataset` reads ``RGB/NAME.png`` with
``GT/LABELS/NAME_labelTrainIds.png`` and has Cityscapes' 19 classes and
palette (the reference's choice), so the model is evaluated on mmseg's
``CityscapesDataset`` unchanged. Three Cityscapes classes (terrain, truck,
train) never occur in SYNTHIA: the papers report the mIoU over the other 16
(``SYNTHIA_16_CLASSES``) and over 13 (``SYNTHIA_13_CLASSES``: without wall,
fence and pole); :class:`mmplugins.evaluation.metrics.SubsetIoUMetric`
with ``subsets='synthia'`` prints both next to the 19-class mIoU.
"""
import os.path as osp

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset, CityscapesDataset

from mmplugins.registry import register_module

#: SYNTHIA class id -> Cityscapes train id, as the reference's converter
#: (from SYNTHIA-RAND-CITYSCAPES' README); 16 (terrain), 18 (truck) and 20
#: (train) are in the table but never occur in the data. Every other id
#: (0 void, 13 parking-slot, 14 road-work, 22 lanemarking) is ignored.
SYNTHIA_ID_TO_TRAIN_ID = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10,
    10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18
}

_CS = CityscapesDataset.METAINFO['classes']
#: the 16 Cityscapes classes SYNTHIA labels (the papers' "mIoU16")
SYNTHIA_16_CLASSES = tuple(
    c for c in _CS if c not in ('terrain', 'truck', 'train'))
#: the papers' "mIoU13": the 16 without wall, fence and pole
SYNTHIA_13_CLASSES = tuple(
    c for c in SYNTHIA_16_CLASSES if c not in ('wall', 'fence', 'pole'))

#: what the converter writes next to each original label
TRAIN_ID_SUFFIX = '_labelTrainIds.png'

_LUT = np.full(65536, 255, dtype=np.uint8)
for _id, _train_id in SYNTHIA_ID_TO_TRAIN_ID.items():
    _LUT[_id] = _train_id


def synthia_ids_to_train_ids(ids: np.ndarray) -> np.ndarray:
    """Map a map of SYNTHIA class ids to Cityscapes train ids.

    Args:
        ids (np.ndarray): Integer array (any shape) of SYNTHIA ids, e.g. the
            first channel of a ``GT/LABELS`` PNG (uint16).

    Returns:
        np.ndarray: uint8 array of the same shape (255 = ignore).
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError('synthia_ids_to_train_ids: expected an integer id '
                        f'map, got dtype {ids.dtype}')
    if ids.size and (ids.min() < 0 or ids.max() > 65535):
        raise ValueError('synthia_ids_to_train_ids: ids must be in '
                         f'0..65535, got {ids.min()}..{ids.max()}')
    return _LUT[ids.astype(np.int64)]


def read_synthia_label(path: str) -> np.ndarray:
    """The SYNTHIA class ids of one original ``GT/LABELS`` PNG.

    Read as the reference does: OpenCV, unchanged, last channel of the BGR
    array = the file's first (red) channel.

    Raises:
        FileNotFoundError: the file is missing or cannot be decoded.
        ValueError: not a 3- or 4-channel PNG (e.g. an already converted
            8-bit train-id map); the message names the file.
    """
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise FileNotFoundError(
            f'{path}: SYNTHIA label missing or not decodable')
    if label.ndim != 3 or label.shape[2] not in (3, 4):
        raise ValueError(
            f'{path}: SYNTHIA label of shape {label.shape} '
            f'({label.dtype}); expected the original GT/LABELS PNG: '
            '16-bit, 3 channels, class id in the first (red) channel')
    return label[:, :, 2]


@register_module('datasets', toolboxes=('mmseg', ))
class SynthiaDataset(BaseSegDataset):
    """SYNTHIA-RAND-CITYSCAPES with Cityscapes' 19 classes (converted
    train-id labels), the reference's ``SynthiaDataset``.

    Args:
        img_suffix (str): Defaults to ``'.png'``.
        seg_map_suffix (str): Defaults to ``'_labelTrainIds.png'`` (written
            by ``tools/dataset_converters/synthia.py``).
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments, e.g.
            ``data_root='data/synthia'``,
            ``data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS')``.

    Note:
        A missing image folder (``RGB/``) or label folder, and images
        without a converted label, are one error each naming the path and
        the expected layout (or the converter to run).
    """
    METAINFO = CityscapesDataset.METAINFO

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = TRAIN_ID_SUFFIX,
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         **kwargs)

    def load_data_list(self):
        root = self.data_root or 'data/synthia'
        layout = (f'{root}/RGB/NAME.png with {root}/GT/LABELS/'
                  f'NAME{TRAIN_ID_SUFFIX}')
        for key in ('img_path', 'seg_map_path'):
            folder = self.data_prefix.get(key)
            if folder and not osp.isdir(folder):
                raise FileNotFoundError(
                    f'SynthiaDataset: {folder} is not a folder; expected '
                    f'the SYNTHIA-RAND-CITYSCAPES layout {layout}')
        data_list = super().load_data_list()
        if self.data_prefix.get('seg_map_path'):
            missing = [d['seg_map_path'] for d in data_list
                       if not osp.exists(d['seg_map_path'])]
            if missing:
                raise FileNotFoundError(
                    f'SynthiaDataset: {len(missing)} of {len(data_list)} '
                    f'images have no converted label (first: {missing[0]}).'
                    ' Run `python tools/dataset_converters/synthia.py '
                    f'{root}` to write the *{TRAIN_ID_SUFFIX} files.')
        return data_list
