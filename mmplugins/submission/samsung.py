"""The 2023 Samsung camera-invariant challenge's submission CSV."""
import csv
import os.path as osp

import numpy as np

from .rle import rle_encode
from .writer import SUBMISSION_WRITERS, BaseSubmissionWriter


@SUBMISSION_WRITERS.register_module(name='samsung')
class SamsungCSVWriter(BaseSubmissionWriter):
    """``id,mask_rle`` rows: one per image and class, at 960x540.

    For every image (in the order given) and every class ``k = 0 ..
    C - 1`` one row ``<image id>_class_<k>,<rle>``: the image id is the file
    name without extension (``TEST_0000``), ``<rle>`` the
    :func:`~mmplugins.submission.rle.rle_encode` of ``pred == k`` at
    **960x540** (row-major, 1-indexed ``start length`` pairs, ``-1`` for an
    empty mask), as the challenge's baseline writes ``sample_submission``.
    Predictions are made at 540x960 (the probabilities of every model and
    view are resized to it before the argmax). Decode a row with
    :func:`~mmplugins.submission.rle.rle_decode` ``(rle, (540, 960))``.
    """
    output_size = (540, 960)

    def open(self, tmp):
        self._file = open(tmp, 'w', newline='')
        self._csv = csv.writer(self._file, lineterminator='\n')
        self._csv.writerow(('id', 'mask_rle'))

    def write(self, img_path, pred):
        image_id = osp.splitext(osp.basename(img_path))[0]
        for k in range(len(self.classes)):
            self._csv.writerow((f'{image_id}_class_{k}',
                                rle_encode(np.asarray(pred) == k)))

    def close(self):
        f = getattr(self, '_file', None)
        if f is not None and not f.closed:
            f.close()
