"""RLE of the Samsung challenge and the submission writers (no model)."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from mmplugins.submission.rle import rle_decode, rle_encode
from mmplugins.submission.writer import SUBMISSION_WRITERS

CLASSES = ('a', 'b', 'c')


def _hand_rle(mask):
    """Runs counted pixel by pixel (1-indexed starts, row-major)."""
    flat = [int(v != 0) for row in np.asarray(mask) for v in row]
    runs, i = [], 0
    while i < len(flat):
        if flat[i]:
            j = i
            while j < len(flat) and flat[j]:
                j += 1
            runs += [i + 1, j - i]
            i = j
        else:
            i += 1
    return ' '.join(map(str, runs)) if runs else '-1'


def test_rle_by_hand_and_edge_masks():
    assert rle_encode(np.array([[0, 1, 1], [1, 0, 1]])) == '2 3 6 1'
    h, w = 4, 5
    edges = {
        'empty': np.zeros((h, w), np.uint8),
        'full': np.ones((h, w), np.uint8),
    }
    for name, (y, x) in dict(first=(0, 0), last=(h - 1, w - 1),
                             single=(2, 1), row_end=(0, w - 1)).items():
        m = np.zeros((h, w), np.uint8)
        m[y, x] = 1
        edges[name] = m
    expected = dict(empty='-1', full='1 20', first='1 1', last='20 1',
                    single='12 1', row_end='5 1')
    for name, m in edges.items():
        assert rle_encode(m) == expected[name] == _hand_rle(m), name
        np.testing.assert_array_equal(rle_decode(rle_encode(m), (h, w)), m)
    # the challenge writes -1 as a number too
    assert not rle_decode(-1, (h, w)).any()


def test_rle_round_trips_random_masks():
    rng = np.random.default_rng(0)
    for shape, p in [((540, 960), 0.3), ((7, 3), 0.5), ((1, 1), 1.0),
                     ((9, 11), 0.05)]:
        m = (rng.random(shape) < p).astype(np.uint8)
        rle = rle_encode(m)
        assert rle == _hand_rle(m) or shape == (540, 960)
        np.testing.assert_array_equal(rle_decode(rle, shape), m)
    with pytest.raises(ValueError, match='1-indexed'):
        rle_decode('0 3', (2, 2))
    with pytest.raises(ValueError, match='inside 2x2'):
        rle_decode('3 5', (2, 2))


def _preds(n, seed=0):
    rng = np.random.default_rng(seed)
    preds = []
    for _ in range(n):
        # blocks of 20x40 pixels of class 0/1 (class 2 never predicted)
        p = rng.integers(0, 2, (27, 24)).repeat(20, 0).repeat(40, 1)
        p[:10, :10] = 1
        preds.append(p)
    return preds


def test_samsung_csv_has_every_image_class_row_in_order(tmp_path):
    out = str(tmp_path / 'sub' / 'submission.csv')
    preds = _preds(2)
    paths = ['/x/TEST_0001.png', '/x/TEST_0000.jpg']  # order as given
    writer_cls = SUBMISSION_WRITERS.get('samsung')
    assert writer_cls.output_size == (540, 960)
    with writer_cls(out, CLASSES) as w:
        for path, p in zip(paths, preds):
            w.add(path, p)
    with open(out, newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['id', 'mask_rle']
    assert [r[0] for r in rows[1:]] == [
        f'TEST_000{i}_class_{k}' for i in (1, 0) for k in range(3)]
    for j, (_, rle) in enumerate(rows[1:]):
        img, k = divmod(j, 3)
        np.testing.assert_array_equal(rle_decode(rle, (540, 960)),
                                      preds[img] == k)
    assert rows[3][1] == rows[6][1] == '-1'  # class 2: empty
    assert sorted(os.listdir(tmp_path / 'sub')) == ['submission.csv']
    # a prediction at another size is refused (the format is 960x540)
    with pytest.raises(ValueError, match=r'needs \(540, 960\)'):
        with writer_cls(out, CLASSES) as w:
            w.add('/x/TEST_0002.png', np.zeros((256, 512), int))


def test_writers_leave_nothing_partial(tmp_path):
    out = tmp_path / 'submission.csv'
    out.write_text('previous\n')
    with pytest.raises(RuntimeError, match='boom'):
        with SUBMISSION_WRITERS.get('samsung')(str(out), CLASSES) as w:
            w.add('/x/TEST_0000.png', _preds(1)[0])
            raise RuntimeError('boom')
    assert out.read_text() == 'previous\n'
    assert sorted(os.listdir(tmp_path)) == ['submission.csv']
    with pytest.raises(RuntimeError, match='boom'):
        with SUBMISSION_WRITERS.get('trainids')(str(tmp_path / 'pngs'),
                                                CLASSES) as w:
            w.add('/x/a.png', np.zeros((4, 5), int))
            raise RuntimeError('boom')
    assert sorted(os.listdir(tmp_path)) == ['submission.csv']


def test_png_writers(tmp_path):
    pred = np.arange(20).reshape(4, 5) % 3
    palette = [[10, 20, 30], [40, 50, 60], [70, 80, 90]]
    for fmt in ('trainids', 'png'):
        out = str(tmp_path / fmt)
        with SUBMISSION_WRITERS.get(fmt)(out, CLASSES, palette) as w:
            w.add('/x/img_1.jpg', pred)
        img = Image.open(os.path.join(out, 'img_1.png'))
        np.testing.assert_array_equal(np.asarray(img), pred)
        if fmt == 'png':
            assert img.mode == 'P'
            assert img.getpalette()[:9] == [c for rgb in palette
                                            for c in rgb]
        else:
            assert img.mode == 'L'
    with pytest.raises(ValueError, match='palette'):
        with SUBMISSION_WRITERS.get('png')(str(tmp_path / 'np'), CLASSES):
            pass


def test_cityscapes_writer_uses_mmseg_label_ids(tmp_path):
    pytest.importorskip('cityscapesscripts')
    from mmseg.evaluation.metrics import CityscapesMetric
    pred = np.arange(19 * 2).reshape(2, 19) % 19
    with SUBMISSION_WRITERS.get('cityscapes')(
            str(tmp_path / 'cs'), [str(i) for i in range(19)]) as w:
        w.add('/x/berlin_000000_000019_leftImg8bit.png', pred)
    got = np.asarray(Image.open(
        tmp_path / 'cs' / 'berlin_000000_000019_leftImg8bit.png'))
    np.testing.assert_array_equal(
        got, CityscapesMetric._convert_to_label_id(pred))
    assert got[0, 0] == 7 and got[0, 18] == 33  # road, bicycle


def test_cityscapes_writer_needs_19_classes(tmp_path):
    with pytest.raises(ValueError, match='19 train-id'):
        with SUBMISSION_WRITERS.get('cityscapes')(str(tmp_path / 'c'),
                                                  CLASSES):
            pass
    assert not os.listdir(tmp_path)
