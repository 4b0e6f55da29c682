"""Write the validation confusion matrix as an image after every validation.

Macro-F1 hides *which* classes are confused; for the mask competition it is
almost always the neighbouring age classes (29 vs 30, 59 vs 60). The matrix
goes to every visualizer backend (TensorBoard's IMAGES tab with
``TensorboardVisBackend``, ``vis_data/vis_image/`` with ``LocalVisBackend``).
"""
from typing import Optional, Sequence

import numpy as np
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from mmplugins.evaluation.metrics.mask_f1 import confusion_matrix
from mmplugins.registry import register_module


def _label(ds, key: str) -> Optional[int]:
    value = ds.get(key, None) if isinstance(ds, dict) else getattr(
        ds, key, None)
    if value is None:
        return None
    value = np.asarray(value.cpu() if hasattr(value, 'cpu') else value)
    return int(value.argmax() if value.size > 1 else value.reshape(-1)[0])


def render_confusion_matrix(cm: np.ndarray,
                            class_names: Optional[Sequence[str]] = None,
                            normalize: bool = True,
                            title: str = 'confusion matrix') -> np.ndarray:
    """RGB uint8 image of ``cm`` (rows: truth, columns: prediction).

    With ``normalize`` the colours are row-normalised (recall per class) and
    the cells print the raw counts.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    n = cm.shape[0]
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    side = max(4., 0.45 * n + 2.5)
    fig = Figure(figsize=(side, side), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.imshow(shown, cmap='Blues', vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(title)
    hi = shown.max() if shown.size else 0
    for t in range(n):
        for p in range(n):
            if cm[t, p]:
                ax.text(p, t, str(int(cm[t, p])), ha='center', va='center',
                        fontsize=6,
                        color='white' if shown[t, p] > 0.6 * hi else 'black')
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


@register_module('hooks')
class ConfusionMatrixHook(Hook):
    """Confusion matrix of every validation, as an image.

    Args:
        num_classes (int): Number of classes (18 for the joint mask label).
        class_names (list[str], optional): Tick labels; defaults to the
            validation dataset's ``metainfo['classes']`` when it has
            ``num_classes`` entries, else the class indices.
        gt_key (str): Field of the output data samples holding the truth.
            Defaults to ``'gt_label'``.
        pred_key (str): Field holding the prediction; a score vector is
            arg-maxed. Defaults to ``'pred_score'`` (see ``MaskF1Metric`` on
            why not ``pred_label``).
        normalize (bool): Colour by row-normalised recall. Defaults to True.
        tag (str): Image name in the backends. Defaults to
            ``'val_confusion_matrix'`` (no ``/``: LocalVisBackend writes
            ``<tag>_<step>.png`` into one folder).

    Note:
        The counts of all ranks are gathered before drawing; only rank 0
        writes. The step is the current training iteration (or epoch for
        an epoch-based loop), like the validation scalars.
    """
    priority = 'LOW'

    def __init__(self,
                 num_classes: int,
                 class_names: Optional[Sequence[str]] = None,
                 gt_key: str = 'gt_label',
                 pred_key: str = 'pred_score',
                 normalize: bool = True,
                 tag: str = 'val_confusion_matrix'):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f'num_classes must be an int >= 2, but got '
                             f'{num_classes!r}')
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f'class_names has {len(class_names)} entries '
                             f'for num_classes={num_classes}')
        if not tag or '/' in tag:
            raise ValueError('tag must be a non-empty name without "/" '
                             f'(used as a file name), but got {tag!r}')
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else None
        self.gt_key = gt_key
        self.pred_key = pred_key
        self.normalize = normalize
        self.tag = tag
        self._pairs = []
        self.last_matrix: Optional[np.ndarray] = None

    def before_val_epoch(self, runner) -> None:
        self._pairs = []

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        for ds in outputs or []:
            gt, pred = _label(ds, self.gt_key), _label(ds, self.pred_key)
            if gt is not None and pred is not None:
                self._pairs.append((gt, pred))

    def after_val_epoch(self, runner, metrics=None) -> None:
        pairs = self._pairs
        if get_dist_info()[1] > 1:
            pairs = [p for part in all_gather_object(pairs) for p in part]
        self._pairs = []
        if not pairs:
            return
        arr = np.asarray(pairs, dtype=np.int64)
        cm = confusion_matrix(arr[:, 0], arr[:, 1], self.num_classes)
        self.last_matrix = cm
        if get_dist_info()[0] != 0:
            return
        names = self.class_names
        if names is None:
            classes = runner.val_dataloader.dataset.metainfo.get(
                'classes', None)
            if classes is not None and len(classes) == self.num_classes:
                names = list(classes)
        # runner.train_loop would *build* a configured-but-unused train loop
        by_epoch = isinstance(getattr(runner, '_train_loop', None),
                              EpochBasedTrainLoop)
        step = runner.epoch if by_epoch else runner.iter
        img = render_confusion_matrix(
            cm, names, self.normalize, title=f'{self.tag} (step {step})')
        runner.visualizer.add_image(self.tag, img, step=step)
