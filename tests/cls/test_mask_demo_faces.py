"""Demo data for the face-crop and label-fix paths: faces MTCNN finds, and
persons recorded with known mistakes plus the CSV that corrects them."""
import glob
import os.path as osp

import pytest

pytest.importorskip('mmpretrain')

from mmplugins.datasets.demo.mask_demo import make_mask_demo  # noqa: E402
from mmplugins.datasets.mask_dataset import MaskDataset  # noqa: E402


def _labels(root, **kw):
    ds = MaskDataset(data_root=root, split='all', **kw)
    out = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        stem = osp.splitext(osp.basename(info['img_path']))[0]
        out[info['person_id'], stem] = info['gt_label']
    return out


def test_mislabelled_persons_and_their_fixes(tmp_path):
    kw = dict(num_persons=12, eval_persons=0, size=32, seed=1)
    make_mask_demo(str(tmp_path / 'clean'), **kw)
    counts = make_mask_demo(str(tmp_path / 'noisy'), mislabel_persons=4,
                            **kw)
    assert counts['mislabelled_persons'] == 4
    truth = _labels(str(tmp_path / 'clean'))
    noisy = _labels(str(tmp_path / 'noisy'))
    # 2 persons' folders name the wrong gender (7 images each)
    wrong = {k for k in truth if truth[k] != noisy[k]}
    assert len(wrong) == 2 * 7 and len({p for p, _ in wrong}) == 2
    fixed = _labels(str(tmp_path / 'noisy'),
                    label_fixes=str(tmp_path / 'noisy' / 'label_fixes.csv'))
    # fixed: the true gender back, and 2 persons whose incorrect_mask /
    # normal files show the other state (the file names lie) relabelled
    changed = {k for k in truth if fixed[k] != truth[k]}
    assert {s for _, s in changed} == {'incorrect_mask', 'normal'}
    assert len(changed) == 4 and not {p for p, _ in changed} & \
        {p for p, _ in wrong}
    for k in changed:  # mask 1 <-> 2 is +-6 on the joint code
        assert abs(fixed[k] - truth[k]) == 6


def test_detectable_faces_are_found_by_mtcnn(tmp_path):
    pytest.importorskip('facenet_pytorch')
    import cv2

    from mmplugins.datasets.transforms.face_crop import FaceCrop
    make_mask_demo(str(tmp_path), num_persons=8, eval_persons=0, size=64,
                   seed=0, faces='detectable')
    t = FaceCrop(cache_dir=None)
    normal = sorted(glob.glob(str(tmp_path / 'images' / '*' / 'normal.*')))
    found = [t(dict(img=cv2.imread(p)))['face_box'] is not None
             for p in normal]
    assert sum(found) >= 7, found
    # the flat cartoon of the default is (mostly) not a face to MTCNN
    make_mask_demo(str(tmp_path / 'flat'), num_persons=8, eval_persons=0,
                   size=64, seed=0)
    flat = sorted(glob.glob(str(tmp_path / 'flat' / 'images' / '*' /
                                'normal.*')))
    assert sum(t(dict(img=cv2.imread(p)))['face_box'] is not None
               for p in flat) < sum(found)
