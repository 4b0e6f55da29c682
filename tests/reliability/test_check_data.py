"""Issue #7, item 4: bad data is named before training starts.

``tools/check_data.py`` builds a config's datasets, reads every file once and
exits 1 with the list of bad files: a truncated image, an image without
label, a label with ids out of range, a label of another size than its image,
an unusable class-statistics cache, a source/target class mismatch.
"""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

import check_data  # tools/check_data.py

SRC_IMG = 'train_source_image/TRAIN_SOURCE_{:04d}.png'
SRC_GT = 'train_source_gt/TRAIN_SOURCE_{:04d}.png'


@pytest.fixture
def seg_copy(rel_data, tmp_path):
    root = str(tmp_path / 'seg')
    shutil.copytree(rel_data['seg'], root,
                    ignore=shutil.ignore_patterns('.mmplugins_cache'))
    return root


def _config(runs, root, path, rcs=True, target_classes=None,
            margins=None):
    cfg = runs.seg_config(root, 4, [])
    if not rcs:
        cfg.train_dataloader.dataset.rare_class_sampling = None
    if target_classes is not None:
        cfg.train_dataloader.dataset.target.metainfo = dict(
            classes=target_classes)
    if margins is not None:
        cfg.train_dataloader.dataset.target.crop_pseudo_margins = margins
    return runs.write_config(cfg, path)


def _check(cfg_path, capsys, *extra):
    code = check_data.main([cfg_path, '--splits', 'train', *extra])
    return code, capsys.readouterr().out


def test_clean_data_passes(seg_copy, runs, tmp_path, capsys):
    code, out = _check(_config(runs, seg_copy, str(tmp_path / 'c.py')),
                       capsys)
    assert code == 0, out
    assert 'OK: 16 items checked' in out  # 8 source + 8 target


@pytest.mark.slow
def test_each_problem_named(seg_copy, runs, tmp_path, capsys):
    img = osp.join(seg_copy, SRC_IMG.format(1))
    data = open(img, 'rb').read()
    open(img, 'wb').write(data[:len(data) // 2])  # truncated PNG
    lbl = osp.join(seg_copy, SRC_GT.format(3))
    a = np.array(Image.open(lbl))
    a[0, :3] = 20
    Image.fromarray(a).save(lbl)  # id 20 with 12 classes
    small = osp.join(seg_copy, SRC_GT.format(4))
    Image.fromarray(np.array(Image.open(small))[:32]).save(small)
    bad_list = str(tmp_path / 'bad.txt')
    code, out = _check(_config(runs, seg_copy, str(tmp_path / 'c.py')),
                       capsys, '--bad-list', bad_list)
    assert code == 1
    assert f'[unreadable image] {img}: cannot decode' in out
    assert 'truncated' in out
    assert f'[label id out of range] {lbl}: ids [20] outside 0..11' in out
    assert (f'[size mismatch] {small}: label is 32x128 but its image '
            in out)
    # the UDA dataset itself refuses to build (its class statistics read
    # the bad label): reported too, and both sides were still checked
    assert 'train dataset cannot be built' in out
    assert sorted(open(bad_list).read().split()) == sorted([img, lbl, small])


def test_image_without_label(seg_copy, runs, tmp_path, capsys):
    gt = osp.join(seg_copy, SRC_GT.format(2))
    os.remove(gt)
    code, out = _check(_config(runs, seg_copy, str(tmp_path / 'c.py'),
                               rcs=False), capsys)
    assert code == 1
    assert f'has no label {gt}' in out


@pytest.mark.parametrize('margins', [None, [2, 2, 2, 2]])
def test_class_mismatch(seg_copy, runs, tmp_path, capsys, margins):
    from mmplugins.datasets.samsung_camera import CLASSES
    classes = list(CLASSES[:11])  # e.g. a target config without 'Car'
    code, out = _check(_config(runs, seg_copy, str(tmp_path / 'c.py'),
                               target_classes=classes, margins=margins),
                       capsys)
    assert code == 1
    assert 'source and target class lists differ' in out
    # both sides still checked on their own; the target's HRDA key
    # (crop_pseudo_margins, UDADataset's) does not break the target build
    assert 'train.target dataset cannot be built' not in out
    assert 'train.source dataset cannot be built' not in out


@pytest.mark.slow
def test_class_stats_cache(seg_copy, runs, tmp_path, capsys):
    cfg = _config(runs, seg_copy, str(tmp_path / 'c.py'))
    assert _check(cfg, capsys)[0] == 0  # writes the cache
    cache_dir = osp.join(seg_copy, '.mmplugins_cache')
    (cache,) = os.listdir(cache_dir)
    open(osp.join(cache_dir, cache), 'wb').close()  # empty cache file
    code, out = _check(cfg, capsys)
    assert code == 0, out  # recomputed, with a warning naming the file
    assert os.path.getsize(osp.join(cache_dir, cache)) > 0
    # labels that hold no class pixel at all: RCS cannot work
    for i in range(8):
        p = osp.join(seg_copy, SRC_GT.format(i))
        Image.fromarray(np.full_like(np.array(Image.open(p)), 255)).save(p)
    code, out = _check(_config(runs, seg_copy, str(tmp_path / 'd.py'),
                               rcs=False), capsys)
    assert code == 0  # legal for plain training (all ignored)
    code, out = _check(cfg, capsys)
    assert code == 1
    assert 'class statistics are all zero' in out or 'cannot be built' \
        in out


@pytest.mark.slow
def test_detection_and_classification(rel_data, runs, tmp_path, capsys):
    det = str(tmp_path / 'det')
    shutil.copytree(rel_data['det'], det)
    imgs = sorted(os.listdir(osp.join(det, 'train')))
    bad = osp.join(det, 'train', imgs[0])
    open(bad, 'wb').write(open(bad, 'rb').read()[:100])
    cfg = runs.write_config(runs.det_config(det, 1, []),
                            str(tmp_path / 'det.py'))
    code, out = _check(cfg, capsys)
    assert code == 1 and f'[unreadable image] {bad}' in out
    cls = runs.write_config(runs.cls_config(rel_data['cls'], 1, []),
                            str(tmp_path / 'cls.py'))
    code, out = _check(cls, capsys)
    assert code == 0, out
