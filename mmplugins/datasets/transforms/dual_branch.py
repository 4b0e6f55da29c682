"""Dual-branch augmentation: an undistorted and a distortion view per sample.

The camera-distortion branch of a 2023 Samsung camera-invariant DA
challenge solution (source = pinhole, target = fisheye): every source sample
yields its usual (undistorted) view plus a *distortion view* made with
albumentations ``Affine`` + ``ElasticTransform`` (optionally the
:class:`FisheyeDistortion` lens model), with the same random draw applied to
image and label. Optionally the distortion view is cut to a random centred
ellipse and the outside filled with the pixels of a random target image, as
in the dark corners of the fisheye target camera; those pixels are labelled
background (``ellipse_label``, 255 = ignored by default). The model is then
supervised on both views, each with its own loss.

Reference semantics as pure functions: :func:`ellipse_mask`,
:func:`mix_outside_ellipse`. The registered transform :class:`DualBranchAug`
is below.
"""
import inspect
import os
import os.path as osp
from numbers import Number
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmplugins.registry import register_module
from .fisheye import FisheyeDistortion

try:  # optional dependency: the module must import without it
    import albumentations as A
except ImportError:  # pragma: no cover - exercised only without albu
    A = None


def ellipse_mask(h: int, w: int, axes: Tuple[float, float]) -> np.ndarray:
    """Bool mask of the centred ellipse with semi-axes ``axes``.

    Args:
        h (int): Image height.
        w (int): Image width.
        axes (tuple[float, float]): Semi-axes as fractions of the half width
            and half height: ``(1, 1)`` is the ellipse inscribed in the
            image, larger values only cut the corners.

    Returns:
        np.ndarray: ``(h, w)`` bool, True inside (or on) the ellipse.
    """
    ax, ay = axes
    ys, xs = np.ogrid[0:h, 0:w]
    # pixel centres, normalised so the image spans [-1, 1] on both axes
    nx = (xs + 0.5 - w / 2.) / (w / 2.)
    ny = (ys + 0.5 - h / 2.) / (h / 2.)
    return (nx / ax)**2 + (ny / ay)**2 <= 1.


def mix_outside_ellipse(img: np.ndarray, seg: Optional[np.ndarray],
                        background: Union[np.ndarray, float],
                        inside: np.ndarray,
                        label: int = 255) -> Tuple[np.ndarray, np.ndarray]:
    """Replace the pixels outside ``inside`` by ``background``.

    Args:
        img (np.ndarray): ``(h, w[, c])`` image.
        seg (np.ndarray, optional): ``(h, w)`` label map.
        background (np.ndarray | float): Image of the same shape as ``img``
            or a constant fill.
        inside (np.ndarray): ``(h, w)`` bool mask of the kept pixels.
        label (int): Label of the replaced pixels.

    Returns:
        tuple: the mixed image and label map (new arrays; label None when
        ``seg`` is None).
    """
    outside = ~inside
    img = img.copy()
    if isinstance(background, np.ndarray):
        img[outside] = background[outside]
    else:
        img[outside] = background
    if seg is not None:
        seg = seg.copy()
        seg[outside] = label
    return img, seg


def _check_prob(name, value):
    if not (isinstance(value, Number) and 0 <= value <= 1):
        raise ValueError(f'{name} must be in [0, 1], but got '
                         f'{name}={value!r}')
    return float(value)


def _check_pair(name, value, positive=True):
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, Number) for v in value)):
        raise ValueError(f'{name} must be a (min, max) pair, but got '
                         f'{name}={value!r}')
    if value[0] > value[1] or (positive and value[0] <= 0):
        raise ValueError(f'{name} must satisfy 0 < min <= max, but got '
                         f'{name}={value!r}')
    return float(value[0]), float(value[1])


def _range_values(value) -> List[float]:
    """Numbers inside an albumentations range argument (for validation)."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in _range_values(item)]
    if isinstance(value, (tuple, list)):
        return [float(v) for v in value]
    return [float(value)]


@register_module('transforms')
class DualBranchAug(BaseTransform):
    """Add a distortion view (image + label) beside the undistorted one.

    Place it after the geometric / photometric transforms of the source
    pipeline and right before :class:`PackDualBranchSegInputs`: later
    transforms do not know about the ``dist_*`` keys. The undistorted
    ``img`` / ``gt_seg_map`` are left untouched.

    Required keys: ``img``; ``gt_seg_map`` when ``with_label=True``.
    Added keys: ``dist_img`` (same shape and dtype as ``img``),
    ``dist_gt_seg_map`` (``(h, w)`` uint8, nearest interpolation — never a
    new class id — and ``seg_fill`` / ``ellipse_label`` where the view has
    no source content), ``dist_params`` (seed and ellipse axes drawn).

    Args:
        affine (dict, optional): Keyword arguments of
            ``albumentations.Affine`` (e.g. ``scale``, ``translate_percent``,
            ``rotate``, ``shear``, ``p``). None disables it. Defaults to
            ``dict(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05),
            rotate=(-10, 10), shear=(-5, 5), p=1.0)``.
        elastic (dict, optional): Keyword arguments of
            ``albumentations.ElasticTransform`` (``alpha``, ``sigma``,
            ``p``, ...). None disables it. Defaults to
            ``dict(alpha=40, sigma=8, p=1.0)``. (albumentations 2.x has no
            ``alpha_affine``: that is what ``affine`` is for.)
        fisheye (dict, optional): Arguments of :class:`FisheyeDistortion`
            applied after affine + elastic. Defaults to None.
        ellipse_prob (float): Probability of the ellipse background mix.
            Defaults to 0 (off).
        ellipse_axes (tuple): ``((min, max), (min, max))`` ranges of the
            ellipse semi-axes, as fractions of the half width and half
            height (see :func:`ellipse_mask`). Defaults to
            ``((0.95, 1.15), (1.05, 1.45))``: corners cut like the fisheye
            target.
        target_img_dir (str, optional): Folder of target images; a random
            one (resized to the view) fills the outside of the ellipse.
            None fills with ``img_fill``. Relative paths are joined to
            ``data_root``. Defaults to None.
        target_img_suffix (str | tuple[str]): Suffixes of the target images.
            Defaults to ``('.png', '.jpg', '.jpeg')``.
        data_root (str, optional): Prefix for a relative ``target_img_dir``.
        ellipse_label (int): Label outside the ellipse. Defaults to 255.
        img_fill (float): Image fill where a warp leaves the image.
            Defaults to 0.
        seg_fill (int): Label fill where a warp leaves the image.
            Defaults to 255.
        with_label (bool): Require ``gt_seg_map`` and produce
            ``dist_gt_seg_map``. False makes an image-only view (e.g. for
            unlabelled target data). Defaults to True.

    Note:
        Randomness: one seed is drawn per call from the global
        ``np.random`` (seeded per dataloader worker by mmengine); the
        albumentations pipeline, the ellipse and the target image choice all
        derive from it, so a fixed ``np.random`` seed reproduces the view.
    """

    def __init__(self,
                 affine: Optional[dict] = dict(
                     scale=(0.9, 1.1),
                     translate_percent=(-0.05, 0.05),
                     rotate=(-10, 10),
                     shear=(-5, 5),
                     p=1.0),
                 elastic: Optional[dict] = dict(alpha=40, sigma=8, p=1.0),
                 fisheye: Optional[dict] = None,
                 ellipse_prob: float = 0.0,
                 ellipse_axes: Sequence[Sequence[float]] = ((0.95, 1.15),
                                                            (1.05, 1.45)),
                 target_img_dir: Optional[str] = None,
                 target_img_suffix: Union[str, Sequence[str]] = ('.png',
                                                                 '.jpg',
                                                                 '.jpeg'),
                 data_root: Optional[str] = None,
                 ellipse_label: int = 255,
                 img_fill: float = 0,
                 seg_fill: int = 255,
                 with_label: bool = True):
        for name, value in (('ellipse_label', ellipse_label),
                            ('seg_fill', seg_fill)):
            if not (isinstance(value, int) and 0 <= value <= 255):
                raise ValueError(f'{name} must be an int in [0, 255], but '
                                 f'got {name}={value!r}')
        if not isinstance(img_fill, Number):
            raise ValueError('img_fill must be a number, but got '
                             f'img_fill={img_fill!r}')
        self.ellipse_label = ellipse_label
        self.seg_fill = seg_fill
        self.img_fill = img_fill
        self.with_label = bool(with_label)
        self.ellipse_prob = _check_prob('ellipse_prob', ellipse_prob)
        if not (isinstance(ellipse_axes, (tuple, list))
                and len(ellipse_axes) == 2):
            raise ValueError('ellipse_axes must be ((min, max), (min, max)),'
                             f' but got ellipse_axes={ellipse_axes!r}')
        self.ellipse_axes = tuple(
            _check_pair('ellipse_axes', pair) for pair in ellipse_axes)

        self.affine = None if affine is None else dict(affine)
        self.elastic = None if elastic is None else dict(elastic)
        albu_transforms = []
        if self.affine is not None:
            albu_transforms.append(self._build_affine(self.affine))
        if self.elastic is not None:
            albu_transforms.append(self._build_elastic(self.elastic))
        self._albu = None
        if albu_transforms:
            if A is None:
                raise ImportError('DualBranchAug needs albumentations for '
                                  'affine/elastic: pip install '
                                  'albumentations')
            self._albu = A.Compose(albu_transforms)
        self.fisheye = None if fisheye is None else dict(fisheye)
        self._fisheye = (None if fisheye is None else
                         FisheyeDistortion(**dict(
                             dict(img_fill=img_fill, seg_fill=seg_fill),
                             **fisheye)))

        if isinstance(target_img_suffix, str):
            target_img_suffix = (target_img_suffix, )
        self.target_img_suffix = tuple(target_img_suffix)
        self.data_root = data_root
        self.target_img_dir = target_img_dir
        self._target_files: Optional[List[str]] = None
        if target_img_dir is not None:
            self._target_files = self._scan_targets()

    # -- construction helpers ----------------------------------------------
    def _albu_kwargs(self, cls, cfg: dict, name: str) -> dict:
        if A is None:  # reported once by __init__
            return cfg
        params = inspect.signature(cls.__init__).parameters
        unknown = sorted(set(cfg) - set(params))
        if unknown:
            raise ValueError(f'{name}: unknown albumentations.{cls.__name__} '
                             f'arguments {unknown} in {name}={cfg!r}')
        cfg = dict(cfg)
        if 'p' in cfg:
            _check_prob(f'{name}.p', cfg['p'])
        cfg.setdefault('p', 1.0)
        interp = cfg.get('mask_interpolation', cv2.INTER_NEAREST)
        if interp != cv2.INTER_NEAREST:
            raise ValueError(f'{name}.mask_interpolation must be '
                             f'cv2.INTER_NEAREST ({cv2.INTER_NEAREST}): '
                             'labels must not get new ids, but got '
                             f'{interp!r}')
        cfg['mask_interpolation'] = cv2.INTER_NEAREST
        cfg.setdefault('border_mode', cv2.BORDER_CONSTANT)
        cfg.setdefault('fill', self.img_fill)
        cfg.setdefault('fill_mask', self.seg_fill)
        return cfg

    def _build_affine(self, cfg: dict):
        cfg = self._albu_kwargs(getattr(A, 'Affine', None), cfg, 'affine')
        if 'scale' in cfg and min(_range_values(cfg['scale'])) <= 0:
            raise ValueError('affine.scale must be > 0, but got '
                             f'scale={cfg["scale"]!r}')
        for key in ('scale', 'translate_percent', 'rotate', 'shear'):
            value = cfg.get(key)
            if isinstance(value, (tuple, list)) and len(value) == 2 \
                    and value[0] > value[1]:
                raise ValueError(f'affine.{key} range must have min <= max, '
                                 f'but got {key}={value!r}')
        return A.Affine(**cfg)

    def _build_elastic(self, cfg: dict):
        cfg = self._albu_kwargs(getattr(A, 'ElasticTransform', None), cfg,
                                'elastic')
        if cfg.get('alpha', 1) < 0:
            raise ValueError('elastic.alpha must be >= 0, but got '
                             f'alpha={cfg["alpha"]!r}')
        if cfg.get('sigma', 50) <= 0:
            raise ValueError('elastic.sigma must be > 0, but got '
                             f'sigma={cfg["sigma"]!r}')
        return A.ElasticTransform(**cfg)

    def _scan_targets(self) -> List[str]:
        folder = self.target_img_dir
        if self.data_root is not None and not osp.isabs(folder):
            folder = osp.join(self.data_root, folder)
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'DualBranchAug: target_img_dir {folder!r} is not a '
                'directory')
        files = sorted(
            osp.join(folder, name) for name in os.listdir(folder)
            if name.lower().endswith(self.target_img_suffix))
        if not files:
            raise FileNotFoundError(
                f'DualBranchAug: no {self.target_img_suffix} images in '
                f'target_img_dir {folder!r}')
        return files

    # -- one sample ----------------------------------------------------------
    def distort(self, img: np.ndarray, seg: Optional[np.ndarray],
                seed: int) -> Tuple[np.ndarray, Optional[np.ndarray], dict]:
        """The distortion view of ``(img, seg)`` for ``seed`` (no mutation).

        Returns:
            tuple: ``dist_img``, ``dist_seg`` (None when ``seg`` is None) and
            the drawn parameters.
        """
        rng = np.random.default_rng(seed)
        params = dict(seed=int(seed))
        h, w = img.shape[:2]
        dist_img, dist_seg = img, seg
        if self._albu is not None:
            self._albu.set_random_seed(int(seed))
            if seg is None:
                out = self._albu(image=img)
            else:
                out = self._albu(image=img, mask=seg)
                dist_seg = out['mask']
            dist_img = out['image']
        if self._fisheye is not None:
            fparams = self._fisheye.draw_params()
            dist_img, segs = self._fisheye.warp(
                dist_img, [] if dist_seg is None else [dist_seg], fparams)
            dist_seg = segs[0] if segs else None
            params['fisheye'] = fparams
        if self.ellipse_prob > 0 and rng.random() < self.ellipse_prob:
            axes = tuple(
                float(rng.uniform(low, high))
                for low, high in self.ellipse_axes)
            background = self.img_fill
            if self._target_files is not None:
                path = self._target_files[rng.integers(
                    len(self._target_files))]
                target = mmcv.imread(path)  # bgr, like LoadImageFromFile
                if target is None:
                    raise FileNotFoundError(
                        f'DualBranchAug: cannot read target image {path!r}')
                background = cv2.resize(target, (w, h),
                                        interpolation=cv2.INTER_LINEAR)
                if dist_img.ndim == 2:
                    background = cv2.cvtColor(background, cv2.COLOR_BGR2GRAY)
                background = background.astype(dist_img.dtype)
                params['target_img_path'] = path
            dist_img, dist_seg = mix_outside_ellipse(
                dist_img, dist_seg, background, ellipse_mask(h, w, axes),
                self.ellipse_label)
            params['ellipse_axes'] = axes
        if dist_img is img:  # no transform enabled: still a separate array
            dist_img = img.copy()
        if dist_seg is not None and dist_seg is seg:
            dist_seg = seg.copy()
        return np.ascontiguousarray(dist_img), dist_seg, params

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError("DualBranchAug needs results['img'] (put it after "
                           'LoadImageFromFile)')
        seg = None
        if self.with_label:
            if 'gt_seg_map' not in results:
                raise KeyError(
                    "DualBranchAug(with_label=True) needs results"
                    "['gt_seg_map']: add LoadAnnotations before it, or set "
                    'with_label=False for unlabelled data')
            seg = results['gt_seg_map']
            if seg.shape[:2] != results['img'].shape[:2]:
                raise ValueError(
                    f'DualBranchAug: gt_seg_map shape {seg.shape[:2]} '
                    f"differs from img shape {results['img'].shape[:2]}")
            if seg.dtype != np.uint8:
                if seg.size and (seg.min() < 0 or seg.max() > 255):
                    raise ValueError(
                        'DualBranchAug: gt_seg_map values must fit uint8 '
                        f'(0..255), but got range [{seg.min()}, {seg.max()}]')
                seg = seg.astype(np.uint8)
        seed = int(np.random.randint(2**31 - 1))
        dist_img, dist_seg, params = self.distort(results['img'], seg, seed)
        results['dist_img'] = dist_img
        if dist_seg is not None:
            results['dist_gt_seg_map'] = dist_seg
        results['dist_params'] = params
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(affine={self.affine}, '
                f'elastic={self.elastic}, fisheye={self.fisheye}, '
                f'ellipse_prob={self.ellipse_prob}, '
                f'ellipse_axes={self.ellipse_axes}, '
                f'target_img_dir={self.target_img_dir!r}, '
                f'ellipse_label={self.ellipse_label}, '
                f'img_fill={self.img_fill}, seg_fill={self.seg_fill}, '
                f'with_label={self.with_label})')
