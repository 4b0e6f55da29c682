"""Ensembles of segmentation models x TTA views on unlabelled images.

:class:`SegEnsemblePredictor` loads each ``(config, checkpoint)`` with
mmseg's ``init_model`` (then the checkpoint strictly: it must fit its
config), feeds every image through each model's own test pipeline (or its
``tta_pipeline``) minus the label transforms, runs ``model.test_step`` (the
model's own ``test_cfg``: whole, batched slide, HRDA; mmseg un-pads,
un-flips and resizes each view's logits to the image's size) and combines:

* each model: mean of the softmax over its views (mmseg's ``SegTTAModel``);
* soft mode (default): weighted mean of the models' probabilities, argmax;
* hard mode: weighted vote of the models' argmaxes; ties go to the class
  with the larger weighted probability sum, then the lower id (the rule of
  ``tools/ensemble.py``'s ``hard_vote``).

Probabilities are resized (bilinear) to the output size -- the writer's
(e.g. the Samsung challenge's 960x540) or each image's own -- before they
are combined. Images stream in batches: per batch every model runs in turn
and only that batch's probabilities are held.
"""
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

#: file extensions read as images (mmseg/mmcv's readable formats)
IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
#: transforms that need a label; dropped for unlabelled images
LABEL_TRANSFORMS = ('LoadAnnotations', 'CheckSegLabel',
                    'LoadDepthAnnotation')


def list_images(img_dir: str) -> List[str]:
    """Sorted image files of ``img_dir`` (not recursive).

    Raises:
        FileNotFoundError: ``img_dir`` is not a folder.
        ValueError: it holds no image, or a file that is not one (by
            extension; hidden files are skipped); the message names it.
    """
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'--img-dir {img_dir} is not a folder')
    paths = []
    for name in sorted(os.listdir(img_dir)):
        path = osp.join(img_dir, name)
        if name.startswith('.') or osp.isdir(path):
            continue
        if not name.lower().endswith(IMG_EXTENSIONS):
            raise ValueError(f'{path} is not an image: expected only image '
                             f'files {IMG_EXTENSIONS} in {img_dir}')
        paths.append(path)
    if not paths:
        raise ValueError(f'{img_dir} holds no image (expected files with '
                         f'extensions {IMG_EXTENSIONS})')
    return paths


def strip_label_transforms(pipeline: Sequence[dict]) -> List[dict]:
    """A copy of ``pipeline`` without the transforms that need a label,
    also inside ``TestTimeAug``'s stages (an emptied stage is dropped)."""
    out = []
    for t in pipeline:
        if t['type'] in LABEL_TRANSFORMS:
            continue
        if t['type'] == 'TestTimeAug':
            stages = []
            for stage in t['transforms']:
                stage = [s for s in stage if s['type'] not in
                         LABEL_TRANSFORMS]
                if stage:
                    stages.append(stage)
            t = dict(t, transforms=stages)
        out.append(dict(t))
    return out


def check_weights(weights: Optional[Sequence[float]],
                  num_models: int) -> np.ndarray:
    """One non-negative weight per model with a positive sum (all 1 when
    None); the count is checked first, with its own message."""
    if weights is not None and len(weights) != num_models:
        raise ValueError(f'--weights: {len(weights)} weights '
                         f'{list(weights)} for {num_models} models; give '
                         'one weight per CONFIG CHECKPOINT pair')
    from mmplugins.utils.vote_weights import vote_weights
    return vote_weights(weights, num_models)  # tools/ensemble.py's rule


class LoadedModel:
    """One segmentor with its pipelines and class list."""

    def __init__(self, config, checkpoint: str, device: str = 'cpu',
                 cfg_options: Optional[dict] = None):
        from mmengine.config import Config
        from mmengine.runner import load_checkpoint
        from mmseg.apis import init_model

        import mmplugins  # noqa: F401  (registers the UDA/HRDA models)
        if isinstance(config, str):
            if not osp.isfile(config):
                raise FileNotFoundError(f'config file not found: {config}')
            config = Config.fromfile(config)
        if cfg_options:
            config.merge_from_dict(cfg_options)
        name = config.filename or '<config>'
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        model = init_model(config, None, device='cpu')
        try:
            ckpt = load_checkpoint(model, checkpoint, map_location='cpu',
                                   strict=True, logger='silent')
        except RuntimeError as e:
            msg = str(e).strip().splitlines()
            raise ValueError(
                f'checkpoint {checkpoint} does not fit the config {name}: '
                + ' '.join(msg)[:600]) from None
        meta = (ckpt.get('meta') or {}).get('dataset_meta') or {}
        self.classes = tuple(meta.get('classes') or
                             (str(i) for i in range(model.out_channels)))
        self.palette = meta.get('palette')
        if len(self.classes) != model.out_channels:
            raise ValueError(
                f'checkpoint {checkpoint}: dataset_meta names '
                f'{len(self.classes)} classes, the model {name} predicts '
                f'{model.out_channels}')
        self.model = model.to(device).eval()
        self.cfg = config
        self.name = f'{name} + {checkpoint}'
        self.device = device

    def pipeline(self, tta: bool) -> Callable:
        from mmengine.dataset import Compose
        if tta:
            if 'tta_pipeline' not in self.cfg:
                raise KeyError(f'{self.cfg.filename}: --tta needs '
                               '`tta_pipeline` in the config')
            steps = self.cfg.tta_pipeline
        else:
            steps = self.cfg.test_dataloader.dataset.pipeline
        return Compose(strip_label_transforms(steps))

    @torch.no_grad()
    def probabilities(self, views: List[List[dict]],
                      out_sizes: Sequence[Tuple[int, int]]
                      ) -> List[torch.Tensor]:
        """Mean softmax over the views of each image, at ``out_sizes``.

        Args:
            views: ``views[i]`` = the packed views (``dict(inputs,
                data_samples)``) of image ``i``; all images have the same
                number of views.
            out_sizes: ``(h, w)`` per image.
        """
        n = len(views)
        sums = [None] * n
        for v in range(len(views[0])):
            # images of one size run as one batch (test_step stacks them)
            groups = {}
            for i in range(n):
                shape = tuple(views[i][v]['inputs'].shape)
                groups.setdefault(shape, []).append(i)
            for idx in groups.values():
                data = dict(
                    inputs=[views[i][v]['inputs'] for i in idx],
                    data_samples=[views[i][v]['data_samples'] for i in idx])
                outs = self.model.test_step(data)
                for i, out in zip(idx, outs):
                    prob = out.seg_logits.data.float().softmax(0)
                    if sums[i] is None:
                        sums[i] = prob
                    else:
                        sums[i] += prob
        probs = []
        for i in range(n):
            p = sums[i] / len(views[0])
            if tuple(p.shape[-2:]) != tuple(out_sizes[i]):
                p = F.interpolate(p[None], size=tuple(out_sizes[i]),
                                  mode='bilinear', align_corners=False)[0]
            probs.append(p)
        return probs


class SegEnsemblePredictor:
    """Predict images with a weighted ensemble of segmentors x TTA views.

    Args:
        models (Sequence[tuple]): ``(config, checkpoint)`` pairs (config: a
            path or an mmengine ``Config``).
        weights (Sequence[float], optional): One per model. Default all 1.
        tta (bool): Use each config's ``tta_pipeline``. Defaults to False.
        mode (str): ``'soft'`` (mean probability) or ``'hard'`` (vote).
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Merged into every config.

    Raises:
        ValueError: a weight count differing from the models', a checkpoint
            that does not fit its config, models with different class lists
            (the message names the model).
    """

    def __init__(self, models: Sequence[Tuple[object, str]],
                 weights: Optional[Sequence[float]] = None,
                 tta: bool = False, mode: str = 'soft', device: str = 'cpu',
                 cfg_options: Optional[dict] = None):
        if mode not in ('soft', 'hard'):
            raise ValueError(f"mode must be 'soft' or 'hard', got {mode!r}")
        if not models:
            raise ValueError('give at least one CONFIG CHECKPOINT pair')
        self.weights = check_weights(weights, len(models))
        self.mode = mode
        self.tta = tta
        self.models = []
        for cfg, ckpt in models:
            m = LoadedModel(cfg, ckpt, device, cfg_options)
            if self.models and m.classes != self.models[0].classes:
                raise ValueError(
                    f'model {len(self.models) + 1} ({m.name}) predicts the '
                    f'classes {list(m.classes)}, model 1 '
                    f'({self.models[0].name}) {list(self.models[0].classes)};'
                    ' an ensemble needs one class list')
            self.models.append(m)
        self.pipelines = [m.pipeline(tta) for m in self.models]

    @property
    def classes(self):
        return self.models[0].classes

    @property
    def palette(self):
        return self.models[0].palette

    def _views(self, pipeline, path: str) -> List[dict]:
        try:
            data = pipeline(dict(img_path=path))
        except Exception as e:  # a file that does not decode
            raise ValueError(f'{path}: could not be read as an image '
                             f'({type(e).__name__}: {e})') from None
        if isinstance(data['inputs'], (list, tuple)):  # TestTimeAug
            return [dict(inputs=i, data_samples=s)
                    for i, s in zip(data['inputs'], data['data_samples'])]
        return [data]

    def predict_batch(self, paths: Sequence[str],
                      output_size: Optional[Tuple[int, int]] = None
                      ) -> List[np.ndarray]:
        """``(H, W)`` int64 class ids of each image at ``output_size``
        (None: the image's size)."""
        w = torch.as_tensor(self.weights / self.weights.sum())
        acc = votes = None
        for k, (model, pipeline) in enumerate(zip(self.models,
                                                  self.pipelines)):
            views = [self._views(pipeline, p) for p in paths]
            sizes = [tuple(output_size) if output_size is not None else
                     tuple(v[0]['data_samples'].ori_shape[:2])
                     for v in views]
            probs = model.probabilities(views, sizes)
            if acc is None:
                acc = [w[k] * p for p in probs]
                if self.mode == 'hard':
                    votes = [torch.zeros_like(p) for p in probs]
            else:
                for a, p in zip(acc, probs):
                    a += w[k] * p
            if self.mode == 'hard':
                for v, p in zip(votes, probs):
                    v.scatter_add_(0, p.argmax(0, keepdim=True),
                                   w[k].to(v).expand(1, *p.shape[1:]))
        if self.mode == 'soft':
            return [a.argmax(0).cpu().numpy() for a in acc]
        out = []
        for v, a in zip(votes, acc):
            best = v.max(0, keepdim=True).values
            tied = torch.isclose(v, best)
            out.append(torch.where(tied, a, torch.full_like(a, -np.inf))
                       .argmax(0).cpu().numpy())
        return out

    def run(self, paths: Sequence[str], writer, batch_size: int = 1,
            progress: bool = True) -> int:
        """Predict ``paths`` in batches into ``writer`` (a
        :class:`~mmplugins.submission.writer.BaseSubmissionWriter`, used
        as a context manager: the output appears only when all images are
        written). Returns the number of images."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'--batch-size must be an int >= 1, got '
                             f'{batch_size!r}')
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(len(paths))
        with writer:
            for start in range(0, len(paths), batch_size):
                part = paths[start:start + batch_size]
                for path, pred in zip(part, self.predict_batch(
                        part, writer.output_size)):
                    writer.add(path, pred)
                    if bar is not None:
                        bar.update()
        if bar is not None:
            bar.file.write('\n')
        return writer.count

