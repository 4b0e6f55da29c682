"""Palette PNGs for a look at the predictions."""
import numpy as np
from PIL import Image

from .writer import SUBMISSION_WRITERS, PerImagePNGWriter, check_uint8_ids


@SUBMISSION_WRITERS.register_module(name='png')
class PalettePNGWriter(PerImagePNGWriter):
    """``<out>/<image stem>.png``: palette ('P' mode) PNG whose pixel values
    are the class ids and whose colours are the dataset palette (the
    checkpoint's ``dataset_meta['palette']``); a viewer shows colours, a
    reader gets ids."""

    def open(self, tmp):
        if not self.palette or len(self.palette) < len(self.classes):
            raise ValueError(
                'png: needs a palette with one RGB colour per class '
                f'({len(self.classes)}), but the checkpoint gives '
                f'{self.palette!r}; use --format trainids')
        flat = [int(c) for rgb in self.palette[:256] for c in rgb]
        self._palette = flat + [0] * (768 - len(flat))

    def save_png(self, path, pred):
        check_uint8_ids('png', pred, path)
        img = Image.fromarray(np.asarray(pred, np.uint8), mode='P')
        img.putpalette(self._palette)
        img.save(path)
