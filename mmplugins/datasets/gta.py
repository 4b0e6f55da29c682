"""GTA5 (Richter et al., ECCV 2016) as a UDA *source* for Cityscapes.

mmseg 1.x ships Cityscapes but no GTA5 dataset. GTA5's ``labels/*.png`` hold
Cityscapes *label ids* (0..33, as ``gtFine_labelIds``), so, as DAFormer/MIC
do, they are converted once to the 19 Cityscapes *train ids* (255 = ignore)
next to the originals (``tools/dataset_converters/gta.py``)::

    data/gta/
    ├── images/00001.png ...
    └── labels/00001.png                  # label ids (original)
               00001_labelTrainIds.png    # train ids (converted)

:class:`GTADataset` then reads ``images/NAME.png`` with
``labels/NAME_labelTrainIds.png`` and has Cityscapes' classes and palette,
so a GTA-trained model is evaluated on mmseg's ``CityscapesDataset``
unchanged. :func:`label_ids_to_train_ids` is the conversion.
"""
import numpy as np
from mmseg.datasets import BaseSegDataset, CityscapesDataset

from mmplugins.registry import register_module

#: Cityscapes label id -> train id (cityscapesscripts' ``labels.py``); every
#: other id (unlabeled, ego vehicle, ..., license plate) is ignored.
ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18
}

_LUT = np.full(256, 255, dtype=np.uint8)
for _id, _train_id in ID_TO_TRAIN_ID.items():
    _LUT[_id] = _train_id


def label_ids_to_train_ids(label: np.ndarray) -> np.ndarray:
    """Map a Cityscapes/GTA5 label-id map to train ids (uint8, 255 ignore).

    Args:
        label (np.ndarray): Integer array of label ids (any shape). GTA5's
            PNGs are palette images; their *indices* are the ids.

    Returns:
        np.ndarray: uint8 array of the same shape.
    """
    label = np.asarray(label)
    if not np.issubdtype(label.dtype, np.integer):
        raise TypeError('label_ids_to_train_ids: expected an integer label '
                        f'map, got dtype {label.dtype}')
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError('label_ids_to_train_ids: label ids must be in '
                         f'0..255, got {label.min()}..{label.max()}')
    return _LUT[label.astype(np.int64)]


@register_module('datasets', toolboxes=('mmseg', ))
class GTADataset(BaseSegDataset):
    """GTA5 with Cityscapes' 19 classes (converted train-id labels).

    Args:
        img_suffix (str): Defaults to ``'.png'``.
        seg_map_suffix (str): Defaults to ``'_labelTrainIds.png'`` (written
            by ``tools/dataset_converters/gta.py``).
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments, e.g.
            ``data_root='data/gta'``,
            ``data_prefix=dict(img_path='images', seg_map_path='labels')``.
    """
    METAINFO = CityscapesDataset.METAINFO

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         **kwargs)

    def load_data_list(self):
        data_list = super().load_data_list()
        # a label that was not converted: one error naming the converter,
        # rather than a failed load at some iteration
        if self.data_prefix.get('seg_map_path'):
            from mmengine import fileio
            missing = [d['seg_map_path'] for d in data_list
                       if not fileio.exists(d['seg_map_path'])]
            if missing:
                raise FileNotFoundError(
                    f'GTADataset: {len(missing)} of {len(data_list)} images '
                    f'have no converted label (first: {missing[0]}). Run '
                    '`python tools/dataset_converters/gta.py '
                    f'{self.data_root or "data/gta"}` to write the '
                    '*_labelTrainIds.png files.')
        return data_list
