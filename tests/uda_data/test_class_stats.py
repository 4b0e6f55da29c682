"""Per-image class pixel statistics: values, parallelism, cache life cycle."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from _uda_data_fixtures import CLASSES, H, RARE_BOX, W, source_label

from mmplugins.datasets.class_stats import (CACHE_DIRNAME,
                                            compute_class_pixel_counts,
                                            compute_class_stats,
                                            image_class_pixel_counts,
                                            label_class_pixel_counts)


def _label_paths(root):
    gt = osp.join(root, 'train_source_gt')
    return [osp.join(gt, f) for f in sorted(os.listdir(gt))]


def _expected(i):
    label = source_label(i)
    return np.bincount(label[label != 255], minlength=4)[:4]


def test_counts_are_exact(demo_root):
    paths = _label_paths(demo_root)
    counts = image_class_pixel_counts(paths, num_classes=4, cache=False)
    assert counts.shape == (8, 4) and counts.dtype == np.int64
    for i in range(8):
        np.testing.assert_array_equal(counts[i], _expected(i))
    y0, y1, x0, x1 = RARE_BOX
    assert counts[1, 3] == (y1 - y0) * (x1 - x0) == 256
    assert counts[0, 3] == 0
    # ignored pixels are not counted
    assert counts.sum(1).tolist() == [H * W - 32] * 8


def test_parallel_equals_serial(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(40):  # >= 32 maps -> a process pool is used
        label = rng.integers(0, 5, (24, 40)).astype(np.uint8)
        label[rng.random((24, 40)) < 0.1] = 255
        p = str(tmp_path / f'{i:03d}.png')
        cv2.imwrite(p, label)
        paths.append(p)
    serial = compute_class_pixel_counts(paths, 5, nproc=1)
    parallel = compute_class_pixel_counts(paths, 5, nproc=2)
    np.testing.assert_array_equal(serial, parallel)
    ref = cv2.imread(paths[7], cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(
        parallel[7], np.bincount(ref[ref != 255], minlength=5))


def test_cache_life_cycle(demo_root):
    paths = _label_paths(demo_root)
    first = compute_class_stats(paths, 4, nproc=1)
    assert first.status == 'computed'
    # next to the data: <root>/.mmplugins_cache/class_stats_<key>.npz
    assert osp.dirname(first.cache_file) == osp.join(demo_root,
                                                     CACHE_DIRNAME)
    second = compute_class_stats(paths, 4, nproc=1)
    assert second.status == 'loaded'
    assert second.cache_file == first.cache_file
    np.testing.assert_array_equal(second.counts, first.counts)
    # order of the request is kept on load
    rev = compute_class_stats(paths[::-1], 4, nproc=1)
    assert rev.status == 'loaded'
    np.testing.assert_array_equal(rev.counts, first.counts[::-1])

    # data changed: image 0 gets the rare class -> stale, recomputed
    new = source_label(0)
    new[10:30, 10:30] = 3
    cv2.imwrite(paths[0], new)
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = compute_class_stats(paths, 4, nproc=1)
    assert third.status == 'stale'
    assert third.counts[0, 3] == 400 and first.counts[0, 3] == 0
    assert compute_class_stats(paths, 4, nproc=1).status == 'loaded'

    # other settings = other statistics, never the cached ones
    other = compute_class_stats(paths, 4, nproc=1, reduce_zero_label=True)
    assert other.status == 'computed' and other.cache_file != \
        first.cache_file
    # road (0) becomes ignored, sky 1 -> 0, rare 3 -> 2
    np.testing.assert_array_equal(other.counts[:, :3], third.counts[:, 1:])
    assert other.counts[:, 3].sum() == 0


@pytest.mark.parametrize('damage', ['empty', 'garbage', 'truncated'])
def test_corrupt_cache_is_recomputed(demo_root, damage):
    paths = _label_paths(demo_root)
    first = compute_class_stats(paths, 4, nproc=1)
    data = open(first.cache_file, 'rb').read()
    with open(first.cache_file, 'wb') as f:
        f.write({'empty': b'', 'garbage': b'not an npz at all' * 10,
                 'truncated': data[:len(data) // 2]}[damage])
    again = compute_class_stats(paths, 4, nproc=1)
    assert again.status == 'corrupt'
    np.testing.assert_array_equal(again.counts, first.counts)
    assert compute_class_stats(paths, 4, nproc=1).status == 'loaded'


def test_unwritable_data_dir_falls_back_to_user_cache(demo_root, tmp_path):
    # a *file* where the cache folder should be: makedirs fails even as root
    open(osp.join(demo_root, CACHE_DIRNAME), 'w').close()
    paths = _label_paths(demo_root)
    first = compute_class_stats(paths, 4, nproc=1)
    assert first.status == 'computed'
    assert first.cache_file.startswith(str(tmp_path / 'user_cache'))
    second = compute_class_stats(paths, 4, nproc=1)
    assert second.status == 'loaded' and \
        second.cache_file == first.cache_file


def test_invalid_label_value_names_the_file(tmp_path):
    label = np.zeros((8, 8), np.uint8)
    label[0, 0] = 7
    p = str(tmp_path / 'bad.png')
    cv2.imwrite(p, label)
    with pytest.raises(ValueError, match=r'bad\.png holds values \[7\]'):
        label_class_pixel_counts(p, num_classes=4)
    with pytest.raises(FileNotFoundError, match='missing.png'):
        compute_class_stats([str(tmp_path / 'missing.png')], 4)


def test_mapping_matches_mmseg_load_annotations(tmp_path):
    from mmseg.datasets.transforms import LoadAnnotations
    label = np.array([[0, 1, 2, 3], [3, 255, 1, 1]], np.uint8)
    p = str(tmp_path / 'l.png')
    cv2.imwrite(p, label)
    label_map = {0: 1, 1: 0, 2: 255}  # a class subset/reorder, after reduce
    counts = label_class_pixel_counts(p, 2, 255, reduce_zero_label=True,
                                      label_map=label_map)
    res = LoadAnnotations()(dict(seg_map_path=p, reduce_zero_label=True,
                                 label_map=label_map, seg_fields=[]))
    gt = res['gt_seg_map']
    np.testing.assert_array_equal(counts,
                                  np.bincount(gt[gt != 255], minlength=2))


def test_palette_png_is_read_as_indices(tmp_path):
    from PIL import Image
    label = np.array([[0, 1, 1], [2, 2, 2]], np.uint8)
    img = Image.fromarray(label, mode='P')
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    p = str(tmp_path / 'p.png')
    img.save(p)
    assert label_class_pixel_counts(p, 3).tolist() == [1, 2, 3]


def test_dataset_input_uses_its_metainfo_and_data_root(demo_root):
    from mmseg.datasets import BaseSegDataset
    ds = BaseSegDataset(
        data_root=demo_root,
        data_prefix=dict(img_path='train_source_image',
                         seg_map_path='train_source_gt'),
        img_suffix='.png', seg_map_suffix='.png',
        metainfo=dict(classes=CLASSES))
    stats = compute_class_stats(ds, nproc=1)
    assert stats.counts.shape == (8, 4)
    assert stats.class_names == list(CLASSES)
    assert stats.cache_file.startswith(osp.join(demo_root, CACHE_DIRNAME))
    assert stats.images_with_class(100)[3].tolist() == [1, 4]
    # unlabelled datasets are refused with the image named
    unl = BaseSegDataset(data_root=demo_root,
                         data_prefix=dict(img_path='train_target_image'),
                         img_suffix='.png', metainfo=dict(classes=CLASSES))
    with pytest.raises(ValueError, match='TRAIN_TARGET_0000.png.*no seg_map'):
        compute_class_stats(unl)


@pytest.mark.parametrize('content_hash', [False, True])
def test_same_size_rewrite_in_the_same_second_invalidates(tmp_path,
                                                          content_hash):
    """A label rewritten in place (same inode) with the same size and an
    mtime in the same second -- only the nanoseconds differ; with
    content_hash=True even the very same mtime -- is not served from the
    cache."""
    a = np.zeros((16, 16), np.uint8)
    b = a.copy()
    b[:4, :4] = 1
    path = str(tmp_path / 'lbl.png')
    with open(path, 'wb') as f:
        f.write(_png(a, 256))
    sec = os.stat(path).st_mtime_ns // 10**9 * 10**9
    os.utime(path, ns=(sec, sec + 100))
    kw = dict(nproc=1, cache_dir=str(tmp_path), content_hash=content_hash)
    assert compute_class_stats([path], 2, **kw).status == 'computed'
    cached = compute_class_stats([path], 2, **kw)
    assert cached.status == 'loaded' and cached.counts[0, 1] == 0
    ino = os.stat(path).st_ino
    with open(path, 'r+b') as f:  # in place: same inode, same size
        f.write(_png(b, 256))
    os.utime(path, ns=(sec, sec + (100 if content_hash else 200)))
    st = os.stat(path)
    assert st.st_ino == ino and st.st_size == 256
    assert st.st_mtime_ns // 10**9 * 10**9 == sec  # the same second
    again = compute_class_stats([path], 2, **kw)
    assert again.status == 'stale'
    assert again.counts[0, 1] == 16


def _png(label, size):
    """PNG bytes of `label` padded to `size` bytes (decoders ignore the
    bytes after IEND)."""
    enc = cv2.imencode('.png', label)[1].tobytes()
    assert len(enc) <= size, (len(enc), size)
    return enc + b'\0' * (size - len(enc))
