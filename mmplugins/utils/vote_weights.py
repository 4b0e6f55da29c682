"""Ensemble weights, one rule for every ensembling tool."""
from typing import Optional, Sequence

import numpy as np


def vote_weights(weights: Optional[Sequence[float]],
                 num_models: int) -> np.ndarray:
    """One non-negative weight per model with a positive sum.

    Used by ``tools/ensemble.py`` (classification) and ``tools/predict.py``
    (segmentation).

    Args:
        weights (Sequence[float], optional): None = all 1.
        num_models (int): How many models are combined.

    Returns:
        ndarray: ``(num_models,)`` float64 weights (not normalised).
    """
    if weights is None:
        return np.ones(num_models)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (num_models, ) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f'need {num_models} non-negative weights with a '
                         f'positive sum, but got {list(weights)}')
    return w
