"""Submission writers: registry and base classes.

A writer receives one ``(H, W)`` class-index prediction per image, in order,
and leaves either the finished file/folder at ``out`` or nothing: it writes
into a temporary sibling (``<out>.tmp-<pid>``) and moves it into place with
``os.replace`` in :meth:`~BaseSubmissionWriter.commit`; on an error
:meth:`~BaseSubmissionWriter.abort` removes the temporary. Use it as a
context manager::

    with SUBMISSION_WRITERS.get('samsung')(out, classes) as writer:
        for path, pred in predictions:
            writer.add(path, pred)

Adding a format = one module in ``mmplugins/submission`` with a class
registered as ``@SUBMISSION_WRITERS.register_module(name='myformat')``
(``tools/predict.py --format myformat``).
"""
import os
import os.path as osp
import shutil
from typing import Optional, Sequence, Tuple

import numpy as np
from mmengine.registry import Registry

#: name -> writer class (``tools/predict.py --format NAME``)
SUBMISSION_WRITERS = Registry('submission writer', scope='mmplugins')


class BaseSubmissionWriter:
    """One submission file or folder, written atomically.

    Args:
        out (str): The file (or folder) to produce.
        classes (Sequence[str]): The models' class names, in id order.
        palette (Sequence[Sequence[int]], optional): RGB per class.

    Class attributes:
        output_size ((h, w) or None): The size the predictions are made at
            (probabilities resized to it before the argmax); None = each
            image's own size.
        is_dir (bool): ``out`` is a folder (else a file).
    """
    output_size: Optional[Tuple[int, int]] = None
    is_dir: bool = False

    def __init__(self, out: str, classes: Sequence[str],
                 palette: Optional[Sequence[Sequence[int]]] = None):
        if not out:
            raise ValueError(f'{type(self).__name__}: out must be a path, '
                             f'but got {out!r}')
        self.out = out
        self.classes = list(classes)
        self.palette = None if palette is None else [list(p)
                                                     for p in palette]
        self.tmp = f'{out.rstrip(os.sep)}.tmp-{os.getpid()}'
        self.count = 0

    # ---------------------------------------------------------- lifecycle
    def begin(self) -> None:
        parent = osp.dirname(osp.abspath(self.out))
        os.makedirs(parent, exist_ok=True)
        if osp.exists(self.out) and osp.isdir(self.out) != self.is_dir:
            kind = 'folder' if self.is_dir else 'file'
            raise FileExistsError(
                f'{self.out} exists and is not a {kind}; this format '
                f'writes a {kind}')
        self._remove(self.tmp)
        if self.is_dir:
            os.makedirs(self.tmp)
        try:
            self.open(self.tmp)
        except BaseException:
            self.abort()
            raise

    def add(self, img_path: str, pred: np.ndarray) -> None:
        """Write the prediction of one image (``(H, W)`` class ids)."""
        pred = np.asarray(pred)
        if pred.ndim != 2:
            raise ValueError(f'{type(self).__name__}: {img_path}: expected '
                             f'an (H, W) prediction, got {pred.shape}')
        if self.output_size is not None and tuple(
                pred.shape) != tuple(self.output_size):
            raise ValueError(
                f'{type(self).__name__}: {img_path}: prediction of size '
                f'{pred.shape}, this format needs {tuple(self.output_size)}')
        self.write(img_path, pred)
        self.count += 1

    def commit(self) -> None:
        """Finish the temporary and move it to ``out``."""
        self.close()
        if self.is_dir and osp.isdir(self.out):
            old = f'{self.tmp}-old'
            os.replace(self.out, old)
            os.replace(self.tmp, self.out)
            shutil.rmtree(old)
        else:
            os.replace(self.tmp, self.out)

    def abort(self) -> None:
        """Drop the temporary; ``out`` is left as it was."""
        try:
            self.close()
        finally:
            self._remove(self.tmp)

    def __enter__(self):
        self.begin()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False

    @staticmethod
    def _remove(path):
        if osp.isdir(path):
            shutil.rmtree(path)
        elif osp.lexists(path):
            os.remove(path)

    # ------------------------------------------------- format-specific
    def open(self, tmp: str) -> None:
        """Start writing into ``tmp`` (a file path, or an existing empty
        folder when ``is_dir``)."""

    def write(self, img_path: str, pred: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush/close what :meth:`open` opened (called once or more)."""


class PerImagePNGWriter(BaseSubmissionWriter):
    """A folder with one PNG per image named after it (``<stem>.png``)."""
    is_dir = True

    def write(self, img_path: str, pred: np.ndarray) -> None:
        stem = osp.splitext(osp.basename(img_path))[0]
        path = osp.join(self.tmp, f'{stem}.png')
        if osp.exists(path):
            raise ValueError(f'{type(self).__name__}: two images named '
                             f'{stem}.* ({img_path}); PNG names must be '
                             'unique')
        self.save_png(path, pred)

    def save_png(self, path: str, pred: np.ndarray) -> None:
        raise NotImplementedError


def check_uint8_ids(name: str, pred: np.ndarray, img_path: str) -> None:
    if pred.size and (pred.min() < 0 or pred.max() > 255):
        raise ValueError(f'{name}: {img_path}: class ids {pred.min()}..'
                         f'{pred.max()} do not fit an 8-bit PNG')
