"""Demo data generator, SamsungCameraDADataset and CheckSegLabel."""
import csv
import hashlib
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

from mmplugins.datasets.demo.samsung_demo import (
    CAR, CONSTRUCTION, IGNORE, LIGHT, NATURE, PERSON, RIDER, ROAD, SIDEWALK,
    SIGN, SKY, SPLITS, fisheye_maps, make_samsung_demo, render_sample)
from mmplugins.datasets.samsung_camera import (CLASSES, PALETTE,
                                               SamsungCameraDADataset)
from mmplugins.datasets.transforms.check_seg_label import CheckSegLabel

# mmengine's serialisation runs gc.collect() (~1 s per dataset)
FAST = dict(serialize_data=False)
TINY = dict(num_train_source=2, num_val_source=1, num_train_target=2,
            num_val_target=1, num_test=1, height=48, width=96)


def tree_digest(root):
    digest = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = osp.join(dirpath, name)
            digest.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def render_many(split, n, h=128, w=256):
    return [render_sample(split, i, seed=11, height=h, width=w)
            for i in range(n)]


@pytest.fixture(scope='module')
def src_tgt():
    # 24 labelled images per domain, in memory (~1 s)
    return render_many('train_source', 24), render_many('val_target', 24)


# ------------------------------------------------------------ generator

def test_same_seed_same_bytes_any_workers(tmp_path):
    a = make_samsung_demo(str(tmp_path / 'a'), seed=5, num_workers=0, **TINY)
    b = make_samsung_demo(str(tmp_path / 'b'), seed=5, num_workers=2, **TINY)
    c = make_samsung_demo(str(tmp_path / 'c'), seed=6, num_workers=0, **TINY)
    n_files = sum(len(f) for _, _, f in os.walk(a['out_dir']))
    # 7 images + 4 labels (labelled splits) + 5 CSV files
    assert n_files == 7 + 4 + 5
    assert tree_digest(a['out_dir']) == tree_digest(b['out_dir'])
    assert tree_digest(a['out_dir']) != tree_digest(c['out_dir'])
    assert a['class_freq'] == b['class_freq']


def test_layout_and_csv(small_demo):
    root, summary = small_demo
    assert summary['counts'] == dict(train_source=6, val_source=6,
                                     train_target=6, val_target=6, test=6)
    for split, (folder, prefix, _, labelled) in SPLITS.items():
        with open(osp.join(root, f'{split}.csv'), newline='') as f:
            rows = list(csv.reader(f))
        assert rows[0] == (['id', 'img_path', 'gt_path'] if labelled else
                           ['id', 'img_path'])
        assert len(rows) == 7
        assert rows[1][:2] == [f'{prefix}_0000',
                               f'./{folder}_image/{prefix}_0000.png']
        for row in rows[1:]:
            img = cv2.imread(osp.join(root, row[1]), cv2.IMREAD_UNCHANGED)
            assert img.shape == (64, 128, 3) and img.dtype == np.uint8
            if labelled:
                assert row[2] == f'./{folder}_gt/{row[0]}.png'
                gt = cv2.imread(osp.join(root, row[2]), cv2.IMREAD_UNCHANGED)
                assert gt.shape == (64, 128) and gt.dtype == np.uint8
                assert set(np.unique(gt)) <= set(range(12)) | {255}
    assert not osp.exists(osp.join(root, 'train_target_gt'))
    assert not osp.exists(osp.join(root, 'test_gt'))


def test_target_differs_from_source(src_tgt):
    src, tgt = src_tgt
    corners = (slice(0, 4), slice(0, 4))
    for img, lab in tgt:  # fisheye: dark corners, ignored in the label
        assert (lab[corners] == IGNORE).all()
        assert img[corners].max() <= 8
    valid_t = [lab != IGNORE for _, lab in tgt]
    ignore_t = 1 - np.mean([v.mean() for v in valid_t])
    ignore_s = np.mean([(lab == IGNORE).mean() for _, lab in src])
    assert 0.04 < ignore_t < 0.15 and ignore_s < 0.01

    def class_rgb(pairs, cls):
        return np.concatenate([img[lab == cls] for img, lab in pairs]).mean(0)

    # sunny blue sky vs overcast grey/orange sky
    sky_s, sky_t = class_rgb(src, SKY), class_rgb(tgt, SKY)
    assert sky_s[2] - sky_s[0] > 50 and sky_t[2] - sky_t[0] < 15
    # vegetation: green in source, olive (red ~ green) in target
    nat_s, nat_t = class_rgb(src, NATURE), class_rgb(tgt, NATURE)
    assert nat_s[1] - nat_s[0] > 25 and nat_t[1] - nat_t[0] < 20
    # inside the image circle the target is darker, warmer, flatter
    px_s = np.concatenate([img.reshape(-1, 3) for img, _ in src]).astype(float)
    px_t = np.concatenate([img[v] for (img, _), v in zip(tgt, valid_t)])
    px_t = px_t.astype(float)
    assert px_t.mean() < px_s.mean() - 15
    warm = lambda p: (p[:, 0] - p[:, 2]).mean()  # noqa: E731
    assert warm(px_t) > warm(px_s) + 10
    assert px_t.std() < 0.75 * px_s.std()


def test_class_frequencies(src_tgt):
    src, tgt = src_tgt

    def freq(pairs):
        hist = sum(np.bincount(lab.ravel(), minlength=256) for _, lab in pairs)
        return hist[:12] / hist[:12].sum()

    def presence(pairs, cls):
        return np.mean([(lab == cls).any() for _, lab in pairs])

    fs, ft = freq(src), freq(tgt)
    bounds = {ROAD: (0.25, 0.55), CONSTRUCTION: (0.15, 0.45),
              NATURE: (0.04, 0.25), SKY: (0.01, 0.15),
              SIDEWALK: (0.02, 0.12), CAR: (0.01, 0.12)}
    for cls, (lo, hi) in bounds.items():
        assert lo < fs[cls] < hi, (CLASSES[cls], fs[cls])
        assert lo < ft[cls] < hi, (CLASSES[cls], ft[cls])
        # same layout distribution: big classes within a factor 2
        assert 0.5 < ft[cls] / fs[cls] < 2.0, (CLASSES[cls], fs[cls], ft[cls])
    for cls in (LIGHT, SIGN, PERSON, RIDER):  # rare and small, but there
        assert fs[cls] < 0.005 and ft[cls] < 0.005, (CLASSES[cls], fs, ft)
        assert 0 < presence(src, cls) < 0.8, CLASSES[cls]
    assert fs[:12].min() > 0  # every class occurs in 24 source images


def test_fisheye_maps_radial():
    map_x, map_y, valid = fisheye_maps(64, 128)
    # centre maps to centre and is magnified; the rim is squeezed
    assert abs(map_x[32, 64] - 64) < 1 and abs(map_y[32, 64] - 32) < 1
    step_c = map_x[32, 65] - map_x[32, 64]
    step_e = map_x[32, 5] - map_x[32, 4]
    assert step_c < 0.7 < 1.5 < step_e
    assert not valid[0, 0] and not valid[-1, -1] and valid[32, 64]
    with pytest.raises(ValueError, match='fov_deg'):
        fisheye_maps(64, 128, fov_deg=180)


def test_bad_generator_args(tmp_path):
    with pytest.raises(ValueError, match='num_test'):
        make_samsung_demo(str(tmp_path), num_test=-1)
    with pytest.raises(KeyError, match='unknown split'):
        render_sample('train', 0)


def test_cli(tmp_path, capsys):
    import make_demo_data
    out = str(tmp_path / 'cli')
    make_demo_data.main(['--out', out, '--num-train-source', '1',
                         '--num-val-source', '1', '--num-train-target', '1',
                         '--num-val-target', '1', '--num-test', '1',
                         '--height', '48', '--width', '96', '--workers', '0'])
    text = capsys.readouterr().out
    assert f'wrote {out}' in text and 'Traffic Light' in text
    assert osp.isfile(osp.join(out, 'test_image', 'TEST_0000.png'))


# -------------------------------------------------------------- dataset

def test_dataset_dir_scan_and_csv_agree(small_demo):
    root, _ = small_demo
    by_dir = SamsungCameraDADataset(
        data_root=root, data_prefix=dict(img_path='val_target_image',
                                         seg_map_path='val_target_gt'),
        **FAST)
    by_csv = SamsungCameraDADataset(data_root=root, ann_file='val_target.csv',
                                    **FAST)
    assert len(by_dir) == len(by_csv) == 6
    for i in range(6):
        a, b = by_dir.get_data_info(i), by_csv.get_data_info(i)
        assert osp.abspath(a['img_path']) == osp.abspath(b['img_path'])
        assert osp.abspath(a['seg_map_path']) == osp.abspath(b['seg_map_path'])
        assert osp.isfile(b['img_path']) and osp.isfile(b['seg_map_path'])
    assert by_dir.metainfo['classes'] == CLASSES and len(CLASSES) == 12
    assert list(map(list, by_dir.metainfo['palette'])) == PALETTE
    assert len(PALETTE) == 12


def test_unlabelled_target_has_no_seg_map(small_demo):
    root, _ = small_demo
    for ds in (SamsungCameraDADataset(
                   data_root=root,
                   data_prefix=dict(img_path='train_target_image'), **FAST),
               SamsungCameraDADataset(data_root=root,
                                      ann_file='train_target.csv', **FAST),
               SamsungCameraDADataset(data_root=root, ann_file='test.csv',
                                      **FAST)):
        assert len(ds) == 6
        assert all('seg_map_path' not in ds.get_data_info(i)
                   for i in range(6))


def test_base_config_pipelines(small_demo, repo_root):
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    root, _ = small_demo
    cfg = Config.fromfile(
        osp.join(repo_root, 'configs/_base_/datasets/samsung_demo.py'))
    train = cfg.train_dataloader.dataset
    train.data_root = root
    item = DATASETS.build(train)[0]
    assert tuple(item['inputs'].shape) == (3, 128, 256)
    assert tuple(item['data_samples'].gt_sem_seg.data.shape) == (1, 128, 256)
    target = dict(cfg.target_train_dataset, data_root=root)
    item = DATASETS.build(target)[0]
    assert tuple(item['inputs'].shape) == (3, 128, 256)
    assert 'gt_sem_seg' not in item['data_samples']
    val = dict(cfg.val_dataloader.dataset, data_root=root)
    ds = DATASETS.build(val)
    assert 'val_target_image' in ds.get_data_info(0)['img_path']
    item = ds[0]  # image resized to 256x512, label kept at 64x128
    assert tuple(item['inputs'].shape) == (3, 256, 512)
    assert tuple(item['data_samples'].gt_sem_seg.data.shape) == (1, 64, 128)
    assert cfg.val_evaluator.type == 'IoUMetric'


# ------------------------------------------------------------ bad input

def test_missing_paths_are_named(small_demo, tmp_path):
    root, _ = small_demo
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        SamsungCameraDADataset(data_root=missing, ann_file='train_source.csv')
    with pytest.raises(FileNotFoundError, match='no_such_image_dir'):
        SamsungCameraDADataset(data_root=root,
                               data_prefix=dict(img_path='no_such_image_dir'))
    with pytest.raises(FileNotFoundError, match='no_gt_here'):
        SamsungCameraDADataset(
            data_root=root, data_prefix=dict(img_path='train_source_image',
                                             seg_map_path='no_gt_here'))
    with pytest.raises(FileNotFoundError, match='missing.csv'):
        SamsungCameraDADataset(data_root=root, ann_file='missing.csv')


def test_bad_csv_and_empty_dir(small_demo, tmp_path):
    root, _ = small_demo
    bad = tmp_path / 'bad.csv'
    bad.write_text('name,path\nA,./a.png\n')
    with pytest.raises(ValueError, match=r"bad.csv.*\['id', 'img_path'\]"):
        SamsungCameraDADataset(ann_file=str(bad))
    gone = tmp_path / 'gone.csv'
    gone.write_text('id,img_path\nX,./train_source_image/NOPE.png\n')
    with pytest.raises(FileNotFoundError, match='NOPE.png'):
        SamsungCameraDADataset(ann_file=str(gone))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no "\\*.png" image'):
        SamsungCameraDADataset(data_prefix=dict(img_path=str(tmp_path /
                                                             'empty')))
    # an image whose label file is missing
    src = tmp_path / 'src'
    shutil.copytree(osp.join(root, 'train_source_image'), src / 'img')
    shutil.copytree(osp.join(root, 'train_source_gt'), src / 'gt')
    os.remove(src / 'gt' / 'TRAIN_SOURCE_0002.png')
    with pytest.raises(FileNotFoundError, match='TRAIN_SOURCE_0002.png'):
        SamsungCameraDADataset(data_root=str(src),
                               data_prefix=dict(img_path='img',
                                                seg_map_path='gt'))
    with pytest.raises(ValueError, match='reduce_zero_label'):
        SamsungCameraDADataset(data_root=root, ann_file='val_source.csv',
                               reduce_zero_label=True)


def _load_pair(root, img_name, gt_name):
    from mmcv.transforms import LoadImageFromFile
    from mmengine.dataset import Compose
    from mmseg.datasets.transforms import LoadAnnotations
    pipe = Compose([LoadImageFromFile(), LoadAnnotations(),
                    CheckSegLabel(num_classes=12)])
    return pipe(dict(img_path=osp.join(root, img_name),
                     seg_map_path=osp.join(root, gt_name),
                     reduce_zero_label=False, seg_fields=[]))


def test_check_seg_label(small_demo, tmp_path):
    root, _ = small_demo
    ok = _load_pair(root, 'val_source_image/VAL_SOURCE_0001.png',
                    'val_source_gt/VAL_SOURCE_0001.png')
    assert ok['gt_seg_map'].shape == (64, 128)
    gt = cv2.imread(osp.join(root, 'val_source_gt/VAL_SOURCE_0001.png'),
                    cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(tmp_path / 'small.png'), gt[:32])
    with pytest.raises(ValueError, match=r'small.png.*\(32, 128\).*\(64, '
                       r'128\)'):
        _load_pair(root, 'val_source_image/VAL_SOURCE_0001.png',
                   str(tmp_path / 'small.png'))
    bad = gt.copy()
    bad[0, 0] = 12
    bad[1, 1] = 200
    cv2.imwrite(str(tmp_path / 'ids.png'), bad)
    with pytest.raises(ValueError,
                       match=r'ids.png.*\[12, 200\].*0\.\.11 or 255'):
        _load_pair(root, 'val_source_image/VAL_SOURCE_0001.png',
                   str(tmp_path / 'ids.png'))
    with pytest.raises(ValueError, match='ignore_index'):
        CheckSegLabel(num_classes=12, ignore_index=3)
    with pytest.raises(ValueError, match='num_classes'):
        CheckSegLabel(num_classes=0)
    with pytest.raises(KeyError, match='y.png.*after LoadAnnotations'):
        CheckSegLabel(num_classes=12)(dict(img_path='x.png',
                                           seg_map_path='y.png'))
    # an unlabelled image (mmseg's inference_model / MMSegInferencer drop
    # LoadAnnotations from the test pipeline) passes unchanged
    unlabelled = dict(img_path='x.png', seg_map_path=None)
    assert CheckSegLabel(num_classes=12)(dict(unlabelled)) == unlabelled
    assert CheckSegLabel(num_classes=12)(dict(img_path='x.png')) == dict(
        img_path='x.png')
