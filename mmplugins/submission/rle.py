"""Run-length encoding of binary masks, as the 2023 Samsung challenge's file.

The challenge's baseline (and its ``sample_submission.csv``) encodes each
class's binary mask at 960x540 as follows: flatten the ``(540, 960)`` mask
row-major (C order), find the runs of ones, write ``start length`` pairs
separated by spaces with **1-indexed** starts; an empty mask is ``-1``.

Example: ``[[0, 1, 1], [1, 0, 1]]`` flattens to ``0 1 1 1 0 1``: runs start
at pixels 2 and 6 (1-indexed) with lengths 3 and 1 -> ``'2 3 6 1'``.
"""
from typing import Sequence, Union

import numpy as np

#: the challenge's value of an empty mask
EMPTY = '-1'


def rle_encode(mask: np.ndarray) -> str:
    """Encode a binary mask as ``'start length ...'`` (1-indexed, row-major).

    Args:
        mask (ndarray): ``(H, W)`` mask; nonzero = foreground.

    Returns:
        str: The run pairs, or ``'-1'`` when the mask is empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'rle_encode: expected an (H, W) mask, but got '
                         f'shape {mask.shape}')
    pixels = np.concatenate([[0], mask.ravel(order='C') != 0, [0]])
    # 1-indexed positions where the value changes: run starts, run ends + 1
    edges = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    if edges.size == 0:
        return EMPTY
    starts, ends = edges[0::2], edges[1::2]
    runs = np.stack([starts, ends - starts], 1).ravel()
    return ' '.join(map(str, runs.tolist()))


def rle_decode(rle: Union[str, int], shape: Sequence[int]) -> np.ndarray:
    """Invert :func:`rle_encode`.

    Args:
        rle (str | int): ``'start length ...'`` or ``-1`` / ``'-1'``.
        shape (Sequence[int]): ``(H, W)`` of the mask (the challenge's
            ``(540, 960)``).

    Returns:
        ndarray: ``(H, W)`` uint8 mask of 0/1.
    """
    h, w = (int(v) for v in shape)
    flat = np.zeros(h * w, np.uint8)
    text = str(rle).strip()
    if text == EMPTY:
        return flat.reshape(h, w)
    try:
        values = np.asarray(text.split(), dtype=np.int64)
    except ValueError:
        raise ValueError(f'rle_decode: {text[:40]!r} is not "start length" '
                         'integer pairs or -1') from None
    if values.size % 2 or (values[0::2] < 1).any() or (
            values[1::2] < 1).any() or (values[0::2] - 1 + values[1::2]
                                        > h * w).any():
        raise ValueError(f'rle_decode: {text[:40]!r} is not 1-indexed '
                         f'"start length" pairs inside {h}x{w} pixels')
    for start, length in zip(values[0::2] - 1, values[1::2]):
        flat[start:start + length] = 1
    return flat.reshape(h, w)
