"""FaceCrop: MTCNN (facenet-pytorch, weights from its wheel) on a real
portrait with a known face position, margin arithmetic, centre-crop
fallback, the on-disk cache (detector not called on the second epoch), and
weights that cannot be loaded."""
import os.path as osp

import numpy as np
import pytest

pytest.importorskip('facenet_pytorch')
pytest.importorskip('mmpretrain')

from mmplugins.datasets.transforms.face_crop import (  # noqa: E402
    FaceCrop, MTCNNDetector, crop_box)

# matplotlib's sample portrait (600 x 512); the face, annotated by hand
# (forehead under the cap to chin, cheek to cheek)
FACE = (176, 124, 364, 336)
OFFSET = (250, 150)  # where the portrait is pasted on a larger canvas


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@pytest.fixture(scope='module')
def portrait():
    import cv2
    from matplotlib import cbook
    img = cv2.imread(str(cbook.get_sample_data('grace_hopper.jpg',
                                               asfileobj=False)))
    assert img.shape == (600, 512, 3)
    canvas = np.full((800, 900, 3), 90, np.uint8)
    ox, oy = OFFSET
    canvas[oy:oy + 600, ox:ox + 512] = img
    return canvas


@pytest.fixture(scope='module')
def mtcnn():
    return MTCNNDetector()


class Spy:
    """Counts the calls of a real detector."""

    def __init__(self, det):
        self.det, self.calls = det, 0
        self.signature = det.signature

    def detect(self, img):
        self.calls += 1
        return self.det.detect(img)


def test_crop_box_on_known_face_position(portrait, mtcnn, tmp_path):
    t = FaceCrop(margin=0.25, detector=mtcnn, cache_dir=str(tmp_path))
    out = t(dict(img=portrait.copy(), img_path='p.jpg'))
    ox, oy = OFFSET
    known = (FACE[0] + ox, FACE[1] + oy, FACE[2] + ox, FACE[3] + oy)
    box = out['face_box']
    assert _iou(box[:4], known) > 0.6, box
    # the crop is the face box grown by 25 % of its size on every side
    x1, y1, x2, y2 = out['face_crop']
    w, h = box[2] - box[0], box[3] - box[1]
    assert x1 == int(np.floor(box[0] - 0.25 * w))
    assert y2 == int(np.ceil(box[3] + 0.25 * h))
    assert out['img'].shape == (y2 - y1, x2 - x1, 3)
    assert np.array_equal(out['img'], portrait[y1:y2, x1:x2])
    assert out['img_shape'] == (y2 - y1, x2 - x1)
    # the known face lies inside the crop
    assert x1 <= known[0] and y1 <= known[1] and x2 >= known[2] \
        and y2 >= known[3]


def test_crop_box_arithmetic_and_fallback():
    # margin 0.5 of a 20 x 40 box at (30, 10): clipped at the top
    assert crop_box((30, 10, 50, 50, .9), 100, 80, 0.5, 0.8) == (20, 0, 60,
                                                                 70)
    # no face: the centre 80 % of 100 x 80
    assert crop_box(None, 100, 80, 0.3, 0.8) == (8, 10, 72, 90)


def test_cache_hit_on_second_epoch_and_fallback_counted(portrait, mtcnn,
                                                        tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (120, 100, 3),
                                              dtype=np.uint8)
    images = [portrait, noise]
    spy = Spy(mtcnn)
    epoch1 = FaceCrop(detector=spy, cache_dir=str(tmp_path / 'c'),
                      log_interval=2)
    first = [epoch1(dict(img=im.copy(), img_path=f'{i}.jpg'))
             for i, im in enumerate(images)]
    assert spy.calls == 2
    assert epoch1.stats['faces'] == 1 and epoch1.stats['fallbacks'] == 1
    # no face in noise: the centre crop
    assert first[1]['face_box'] is None
    assert first[1]['face_crop'] == crop_box(None, 120, 100, 0, 0.8)
    # epoch 2 in a fresh process-like instance (a new dataloader worker):
    # only the disk cache is shared, the detector is not called
    epoch2 = FaceCrop(detector=spy, cache_dir=str(tmp_path / 'c'))
    second = [epoch2(dict(img=im.copy())) for im in images]
    assert spy.calls == 2
    assert epoch2.stats['cache_hits'] == 2
    for a, b in zip(first, second):
        assert a['face_crop'] == b['face_crop']
        assert np.array_equal(a['img'], b['img'])
    # an edited image is a new key
    edited = portrait.copy()
    edited[0, 0] = 0
    epoch2(dict(img=edited))
    assert spy.calls == 3


def test_counts_are_logged(portrait, mtcnn, tmp_path):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('face_crop_test',
                                   log_file=str(tmp_path / 'log.txt'))
    t = FaceCrop(detector=mtcnn, cache_dir=None, log_interval=2)
    t(dict(img=portrait.copy()))
    t(dict(img=np.zeros((50, 50, 3), np.uint8)))
    log = open(tmp_path / 'log.txt').read()
    del logger
    assert ('FaceCrop: 2 image(s): 1 face(s), 1 centre-crop fallback(s) '
            '(no face found); detector ran 2 time(s), 0 cache hit(s)') in log


def test_weights_that_cannot_load_are_named(tmp_path):
    (tmp_path / 'pnet.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match=r'cannot load the MTCNN weights '
                       + osp.join(str(tmp_path), 'pnet.pt')):
        MTCNNDetector(weights_dir=str(tmp_path))
    # the pipeline builds its detector lazily: the error comes at the first
    # image, still naming the file
    t = FaceCrop(detector=dict(type='mtcnn', weights_dir=str(tmp_path)),
                 cache_dir=None)
    with pytest.raises(RuntimeError, match='pnet.pt'):
        t(dict(img=np.zeros((40, 40, 3), np.uint8)))
    with pytest.raises(KeyError, match="unknown detector 'haar'"):
        FaceCrop(detector='haar')
    with pytest.raises(ValueError, match='margin must be in'):
        FaceCrop(margin=-1)
