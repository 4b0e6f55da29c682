"""UDADataset(sync_crop_size=...): HRDA's synchronized crop of the packed
source and target sample at one random box."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmplugins.datasets.sync_crop import crop_box
from mmplugins.datasets.uda_dataset import UDADataset

H, W = 12, 20


def _coords(offset):
    """A (1, H, W) tensor whose value names its pixel: offset + y*100 + x."""
    y, x = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    return (offset + y * 100 + x)[None].to(torch.int32)


class _Packed:
    """A tiny packed dataset: inputs, gt_sem_seg and (target) a
    valid_pseudo_mask encode their pixel coordinates."""
    metainfo = dict(classes=('a', 'b'))

    def __init__(self, offset, with_mask=False):
        self.offset, self.with_mask = offset, with_mask

    def __len__(self):
        return 3

    def __getitem__(self, i):
        ds = SegDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W)))
        ds.gt_sem_seg = PixelData(data=_coords(self.offset + 1))
        if self.with_mask:
            ds.valid_pseudo_mask = PixelData(data=_coords(self.offset + 2))
        return dict(inputs=_coords(self.offset).repeat(3, 1, 1),
                    data_samples=ds)


def _dataset(size, seed=0):
    return UDADataset(source=_Packed(0), target=_Packed(100000, True),
                      sync_crop_size=size, seed=seed)


def test_source_and_target_cropped_at_one_box():
    ds = _dataset((4, 6))
    boxes = set()
    for i in range(12):
        item = ds[i % 3]
        y1, y2, x1, x2 = ds.last_sync_box
        boxes.add((y1, x1))
        assert (y2 - y1, x2 - x1) == (4, 6)
        assert 0 <= y1 <= H - 4 and 0 <= x1 <= W - 6
        src = item['inputs']
        assert src.shape == (3, 4, 6)
        # the values name the pixels: the crop is the box, for every field
        expected = _coords(0)[..., y1:y2, x1:x2]
        assert torch.equal(src[0:1], expected)
        assert torch.equal(item['target_inputs'][0:1], expected + 100000)
        assert torch.equal(item['data_samples'].gt_sem_seg.data,
                           expected + 1)
        tds = item['target_data_samples']
        assert torch.equal(tds.valid_pseudo_mask.data, expected + 100002)
        assert item['data_samples'].img_shape == (4, 6)
        assert tds.img_shape == (4, 6)
    assert len(boxes) > 3  # random, not one fixed box


def test_box_is_uniform_over_the_valid_offsets():
    """The reference's randint(0, margin + 1): every offset, both ends
    included, about equally often."""
    rng = np.random.default_rng(0)
    ys = [crop_box((H, W), (10, 20), rng)[0] for _ in range(3000)]
    counts = np.bincount(ys, minlength=3)
    assert len(counts) == 3 and counts.min() > 850  # offsets 0, 1, 2


def test_sample_smaller_than_the_crop_keeps_its_extent():
    ds = _dataset((H + 5, 8))
    item = ds[0]
    y1, _, x1, _ = ds.last_sync_box
    assert y1 == 0 and item['inputs'].shape == (3, H, 8)
    assert item['data_samples'].img_shape == (H, 8)


def test_off_by_default_and_bad_sizes():
    ds = UDADataset(source=_Packed(0), target=_Packed(100000))
    assert ds[0]['inputs'].shape == (3, H, W) and ds.last_sync_box is None
    for bad in ((0, 4), (4, ), (4.0, 4), 'x'):
        with pytest.raises(ValueError, match='sync_crop_size'):
            _dataset(bad)
    assert _dataset(5).sync_crop_size == (5, 5)
