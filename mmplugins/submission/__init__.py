"""Submission files from segmentation predictions (``tools/predict.py``).

* :mod:`.rle` -- the 2023 Samsung challenge's run-length encoding;
* :mod:`.writer` -- :data:`SUBMISSION_WRITERS`, the writer base classes
  (atomic: a temporary file/folder moved into place at the end);
* one module per format: ``samsung``, ``cityscapes``, ``trainids``, ``png``;
* :mod:`.seg_predictor` -- softmax ensembling of models x TTA views.

A new competition's format is one file here with one registered class.
"""
