"""labelTrainIds PNGs (ACDC / Dark Zurich test servers, any label map)."""
import cv2
import numpy as np

from .writer import SUBMISSION_WRITERS, PerImagePNGWriter, check_uint8_ids


@SUBMISSION_WRITERS.register_module(name='trainids')
class TrainIdsPNGWriter(PerImagePNGWriter):
    """``<out>/<image stem>.png``: single-channel uint8 PNG of the class
    index of each pixel (the model's ids, i.e. Cityscapes *train ids* for
    a 19-class Cityscapes model), at the image's own size."""

    def save_png(self, path, pred):
        check_uint8_ids('trainids', pred, path)
        if not cv2.imwrite(path, np.asarray(pred, np.uint8)):
            raise OSError(f'trainids: could not write {path}')
