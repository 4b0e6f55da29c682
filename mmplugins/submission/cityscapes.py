"""Cityscapes test-server PNGs (labelIds), through mmseg's CityscapesMetric."""
import torch

from .writer import SUBMISSION_WRITERS, PerImagePNGWriter


@SUBMISSION_WRITERS.register_module(name='cityscapes')
class CityscapesLabelIdsWriter(PerImagePNGWriter):
    """``<out>/<image stem>.png`` with Cityscapes **labelIds** (what the
    official test server takes), written by mmseg's
    ``CityscapesMetric(format_only=True)``: its ``process`` maps the 19
    train ids to label ids with ``cityscapesscripts`` and saves the PNG, so
    the id mapping is mmseg's, not re-implemented.

    Note:
        Needs ``pip install cityscapesscripts`` and a 19-class (Cityscapes
        train id) model.
    """

    def open(self, tmp):
        if len(self.classes) != 19:
            raise ValueError(
                'cityscapes: the models predict '
                f'{len(self.classes)} classes, the Cityscapes label-id '
                'mapping needs the 19 train-id classes; use --format '
                'trainids')
        try:
            from mmseg.evaluation.metrics import CityscapesMetric
            self._metric = CityscapesMetric(output_dir=tmp,
                                            format_only=True,
                                            keep_results=True)
        except ImportError as e:
            raise ImportError(
                f'cityscapes: {e} (mmseg\'s CityscapesMetric converts train '
                'ids to label ids with it)') from None

    def write(self, img_path, pred):
        sample = dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                      img_path=img_path)
        self._metric.process({}, [sample])
        self._metric.results.clear()  # streamed: keep no per-image record
