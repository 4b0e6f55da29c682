"""Face crop with a margin, the detector run once per image (disk cache).

The mask-competition teams cropped every image -- train *and* evaluation --
around the face that MTCNN found (0.719 -> 0.733 macro-F1 in one
write-up), with a fixed crop where MTCNN found no face. :class:`FaceCrop`
does this inside the data pipeline, right after ``LoadImageFromFile``:

* the detector is MTCNN from ``facenet-pytorch`` (its three small networks'
  weights ship inside the package's wheel: nothing is downloaded);
* the box of every image is cached on disk, keyed by the SHA-1 of the
  decoded pixels and by the detector's settings, so the detector runs once
  per image over all epochs, workers and runs that share ``cache_dir``;
* no face: a centre crop (``fallback_ratio`` of each side), counted; the
  counts are logged every ``log_interval`` images and kept in ``stats``.

Put the same ``FaceCrop`` in the train, val and test (and TTA) pipelines so
the model sees the same framing everywhere.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import tempfile
from collections import Counter
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmplugins.registry import register_module

#: file names of MTCNN's three networks in facenet-pytorch's ``data/``
MTCNN_WEIGHTS = ('pnet.pt', 'rnet.pt', 'onet.pt')


class MTCNNDetector:
    """MTCNN face detector (``facenet-pytorch``), largest face per image.

    Args:
        min_face_size (int): Smallest face side searched, in pixels.
            Defaults to 20 (facenet-pytorch's default).
        thresholds (Sequence[float]): Score thresholds of the three stages.
            Defaults to ``(0.6, 0.7, 0.7)`` (facenet-pytorch's default).
        factor (float): Scale step of the image pyramid. Defaults to 0.709.
        weights_dir (str, optional): Folder with ``pnet.pt``, ``rnet.pt``,
            ``onet.pt``. Defaults to None: the ``data/`` folder of the
            installed ``facenet_pytorch`` package (the weights of its wheel).

    Raises:
        RuntimeError: naming the package or the weights file when
            ``facenet-pytorch`` is not installed or a weights file is
            missing or cannot be loaded.
    """

    def __init__(self,
                 min_face_size: int = 20,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709,
                 weights_dir: Optional[str] = None):
        if int(min_face_size) < 12:
            raise ValueError(f'min_face_size must be >= 12 (MTCNN\'s '
                             f'smallest window), but got {min_face_size}')
        if len(thresholds) != 3 or not all(0 < t < 1 for t in thresholds):
            raise ValueError('thresholds must be 3 floats in (0, 1), but got '
                             f'{thresholds!r}')
        if not 0 < factor < 1:
            raise ValueError(f'factor must be in (0, 1), but got {factor}')
        try:
            import torch
            from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
            from facenet_pytorch.models.utils.detect_face import detect_face
        except ImportError as e:
            raise RuntimeError(
                'FaceCrop: the MTCNN detector needs facenet-pytorch, whose '
                'wheel ships the MTCNN weights: `pip install --no-deps '
                'facenet-pytorch==2.6.0 requests` (requirements/'
                f'optional-nodeps.txt; `make install` does it): {e}') from e
        import facenet_pytorch
        if weights_dir is None:
            weights_dir = osp.join(osp.dirname(facenet_pytorch.__file__),
                                   'data')
        nets = []
        for cls, fname in zip((PNet, RNet, ONet), MTCNN_WEIGHTS):
            path = osp.join(weights_dir, fname)
            net = cls(pretrained=False)
            try:
                state = torch.load(path, map_location='cpu',
                                   weights_only=True)
                net.load_state_dict(state)
            except Exception as e:  # noqa: BLE001 - any load failure
                raise RuntimeError(
                    f'FaceCrop: cannot load the MTCNN weights {path} '
                    f'({type(e).__name__}: {e}); expected the state dict '
                    'that facenet-pytorch ships') from e
            nets.append(net.eval())
        self._nets = nets
        self._detect_face = detect_face
        self._torch = torch
        self.min_face_size = int(min_face_size)
        self.thresholds = [float(t) for t in thresholds]
        self.factor = float(factor)
        self.signature = (f'mtcnn-facenet_pytorch-'
                          f'{getattr(facenet_pytorch, "__version__", "?")}-'
                          f'{self.min_face_size}-{self.thresholds}-'
                          f'{self.factor}-{osp.abspath(weights_dir)}')

    def detect(self, img_bgr: np.ndarray) -> Optional[Tuple[float, ...]]:
        """``(x1, y1, x2, y2, prob)`` of the largest face, or None."""
        rgb = np.ascontiguousarray(img_bgr[..., ::-1])
        with self._torch.no_grad():
            boxes, _ = self._detect_face(rgb, self.min_face_size,
                                         *self._nets, self.thresholds,
                                         self.factor, 'cpu')
        boxes = np.asarray(boxes[0], dtype=np.float64).reshape(-1, 5)
        if len(boxes) == 0:
            return None
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return tuple(float(v) for v in boxes[int(area.argmax())])


DETECTORS = dict(mtcnn=MTCNNDetector)


def crop_box(face: Optional[Sequence[float]], height: int, width: int,
             margin: float, fallback_ratio: float) -> Tuple[int, ...]:
    """Integer crop ``(x1, y1, x2, y2)`` (x2/y2 exclusive) in the image.

    A face box grows by ``margin`` times its width (left and right) and its
    height (top and bottom) and is clipped to the image; ``face=None`` gives
    the centre ``fallback_ratio`` of each side.
    """
    if face is None:
        ch = max(1, int(round(height * fallback_ratio)))
        cw = max(1, int(round(width * fallback_ratio)))
        y1, x1 = (height - ch) // 2, (width - cw) // 2
        return x1, y1, x1 + cw, y1 + ch
    fx1, fy1, fx2, fy2 = face[:4]
    mw, mh = margin * (fx2 - fx1), margin * (fy2 - fy1)
    x1 = int(np.clip(np.floor(fx1 - mw), 0, width - 1))
    y1 = int(np.clip(np.floor(fy1 - mh), 0, height - 1))
    x2 = int(np.clip(np.ceil(fx2 + mw), x1 + 1, width))
    y2 = int(np.clip(np.ceil(fy2 + mh), y1 + 1, height))
    return x1, y1, x2, y2


@register_module('transforms', toolboxes=('mmpretrain', ))
class FaceCrop(BaseTransform):
    """Crop the image around the detected face, with a margin.

    Required keys: ``img``. Modified: ``img``, ``img_shape``. Added:
    ``face_box`` (the detector's box or None) and ``face_crop``
    (``(x1, y1, x2, y2)`` of the crop in the loaded image).

    Args:
        margin (float): Added on every side, as a fraction of the face box's
            width (left/right) and height (top/bottom). Defaults to 0.3.
        detector (str | dict | object): ``'mtcnn'``, ``dict(type='mtcnn',
            min_face_size=..., thresholds=..., weights_dir=...)`` (see
            :class:`MTCNNDetector`), or an object with ``detect(img_bgr) ->
            (x1, y1, x2, y2, prob) | None`` and a ``signature`` string.
            Built on the first image, so a pipeline that never runs does not
            load it. Defaults to ``'mtcnn'``.
        cache_dir (str, optional): Where the boxes are cached
            (``<cache_dir>/<detector hash>/<aa>/<image sha1>.json``).
            Defaults to ``'work_dirs/face_crop_cache'``; None keeps the
            cache in memory only.
        fallback_ratio (float): Centre crop (fraction of each side) when no
            face is found. Defaults to 0.8.
        log_interval (int): Log the counts every this many images (per
            process). Defaults to 1000.

    Note:
        The cache key is the decoded image (pixels and shape), not the path,
        so a moved data set keeps its cache and an edited image is detected
        again. The detector settings are part of the key too.
    """

    #: ``detector=dict(type=...)`` names a key of :data:`DETECTORS`, not a
    #: registry entry (read by the config pre-flight)
    NESTED_TYPES = {'detector': tuple(DETECTORS)}

    def __init__(self,
                 margin: float = 0.3,
                 detector: Union[str, dict, object] = 'mtcnn',
                 cache_dir: Optional[str] = 'work_dirs/face_crop_cache',
                 fallback_ratio: float = 0.8,
                 log_interval: int = 1000):
        if not 0 <= margin <= 2:
            raise ValueError(f'margin must be in [0, 2], but got {margin}')
        if not 0 < fallback_ratio <= 1:
            raise ValueError('fallback_ratio must be in (0, 1], but got '
                             f'{fallback_ratio}')
        if int(log_interval) < 1:
            raise ValueError(f'log_interval must be >= 1, but got '
                             f'{log_interval}')
        if isinstance(detector, str):
            detector = dict(type=detector)
        if isinstance(detector, dict):
            kind = detector.get('type')
            if kind not in DETECTORS:
                raise KeyError(f'FaceCrop: unknown detector {kind!r}; '
                               f'expected one of {sorted(DETECTORS)}')
        elif not callable(getattr(detector, 'detect', None)):
            raise TypeError('detector must be a name, a dict or an object '
                            f'with detect(img), but got {detector!r}')
        self.margin = float(margin)
        self.detector_cfg = detector
        self._detector = None if isinstance(detector, dict) else detector
        self.cache_dir = cache_dir
        self.fallback_ratio = float(fallback_ratio)
        self.log_interval = int(log_interval)
        self._memory = {}
        self.stats = Counter()

    @property
    def detector(self):
        """The detector, built on first use."""
        if self._detector is None:
            cfg = dict(self.detector_cfg)
            self._detector = DETECTORS[cfg.pop('type')](**cfg)
        return self._detector

    def _cache_path(self, key: str) -> Optional[str]:
        if self.cache_dir is None:
            return None
        if isinstance(self.detector_cfg, dict):  # no need to load it
            sig = json.dumps(self.detector_cfg, sort_keys=True)
        else:
            sig = str(getattr(self.detector, 'signature', None)
                      or type(self.detector).__name__)
        sub = hashlib.sha1(sig.encode()).hexdigest()[:12]
        return osp.join(self.cache_dir, sub, key[:2], key + '.json')

    def face_of(self, img: np.ndarray, img_path: str = '') -> Optional[tuple]:
        """The cached or detected face box of ``img`` (None: no face)."""
        key = hashlib.sha1(
            str(img.shape).encode() + np.ascontiguousarray(img).tobytes()
        ).hexdigest()
        if key in self._memory:
            self.stats['cache_hits'] += 1
            return self._memory[key]
        path = self._cache_path(key)
        if path is not None and osp.isfile(path):
            with open(path) as f:
                box = json.load(f)['box']
            self.stats['cache_hits'] += 1
        else:
            box = self.detector.detect(img)
            self.stats['detector_calls'] += 1
            if path is not None:
                os.makedirs(osp.dirname(path), exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=osp.dirname(path),
                                           suffix='.tmp')
                with os.fdopen(fd, 'w') as f:
                    json.dump(dict(box=box, img_path=img_path), f)
                os.replace(tmp, path)
        box = None if box is None else tuple(box)
        self._memory[key] = box
        return box

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        face = self.face_of(img, results.get('img_path', ''))
        x1, y1, x2, y2 = crop_box(face, h, w, self.margin,
                                  self.fallback_ratio)
        self.stats['images'] += 1
        self.stats['faces' if face is not None else 'fallbacks'] += 1
        if self.stats['images'] % self.log_interval == 0:
            self.log_stats()
        results['img'] = img[y1:y2, x1:x2]
        results['img_shape'] = results['img'].shape[:2]
        results['face_box'] = face
        results['face_crop'] = (x1, y1, x2, y2)
        return results

    def log_stats(self):
        """One INFO line with the counts of this process."""
        from mmengine.logging import print_log
        s = self.stats
        print_log(
            f'FaceCrop: {s["images"]} image(s): {s["faces"]} face(s), '
            f'{s["fallbacks"]} centre-crop fallback(s) (no face found); '
            f'detector ran {s["detector_calls"]} time(s), '
            f'{s["cache_hits"]} cache hit(s)',
            logger='current', level=logging.INFO)

    def __repr__(self):
        return (f'{type(self).__name__}(margin={self.margin}, detector='
                f'{self.detector_cfg!r}, cache_dir={self.cache_dir!r}, '
                f'fallback_ratio={self.fallback_ratio})')
