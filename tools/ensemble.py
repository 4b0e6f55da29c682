"""Soft / hard voting over saved predictions, written as a submission CSV.

Each input is a ``.pkl`` written by ``tools/test.py CONFIG CKPT --out
PRED.pkl`` (mmengine ``DumpResults``: one dict per image with ``img_path``
and ``pred_score``), from different models or folds over the *same* images.

Examples::

    # average the probabilities of five fold models (soft voting)
    python tools/ensemble.py f0.pkl f1.pkl f2.pkl f3.pkl f4.pkl \\
        --mode soft --out work_dirs/submission.csv --info-csv eval/info.csv
    # majority vote of the argmaxes, weighted, per label group
    python tools/ensemble.py a.pkl b.pkl c.pkl --mode hard --weights 2 1 1 \\
        --groups 3 2 3 --out submission.csv

The CSV has the competition's columns ``ImageID,ans``. With ``--info-csv``
its rows follow that file (every ImageID must be predicted); otherwise they
follow the first prediction file. When the predictions carry ``gt_label``
the macro-F1 of every input and of the ensemble is printed.
"""
import argparse
import csv
import os
import os.path as osp
import pickle
import sys
from collections import Counter
from typing import List, Optional, Sequence, Tuple

import numpy as np

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mmplugins.utils.vote_weights import vote_weights  # noqa: E402

# ---------------------------------------------------------------------------
# reference semantics
# ---------------------------------------------------------------------------


# the weight rule shared with tools/predict.py
_weights = vote_weights


def soft_vote(scores: np.ndarray,
              weights: Optional[Sequence[float]] = None
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Weighted mean of the class scores, then argmax.

    Args:
        scores (ndarray): ``(M, N, C)`` scores of M models for N images.
        weights (Sequence[float], optional): One weight per model.

    Returns:
        tuple: ``(labels (N,), mean scores (N, C))``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    w = _weights(weights, scores.shape[0])
    mean = np.tensordot(w / w.sum(), scores, axes=1)
    return mean.argmax(1), mean


def hard_vote(scores: np.ndarray,
              weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """Weighted majority of the models' argmax labels.

    Ties between the most voted classes go to the one with the larger
    summed (weighted) score, then to the lower class index.

    Args:
        scores (ndarray): ``(M, N, C)`` scores.
        weights (Sequence[float], optional): Vote weight per model.

    Returns:
        ndarray: ``(N,)`` labels.
    """
    scores = np.asarray(scores, dtype=np.float64)
    num_models, n, c = scores.shape
    w = _weights(weights, num_models)
    votes = np.zeros((n, c))
    top = scores.argmax(2)  # (M, N)
    for m in range(num_models):
        votes[np.arange(n), top[m]] += w[m]
    summed = np.tensordot(w, scores, axes=1)
    best = votes.max(1, keepdims=True)
    # among the tied classes keep the highest summed score; argmax takes the
    # lowest index on an exact tie
    tie_break = np.where(np.isclose(votes, best), summed, -np.inf)
    return tie_break.argmax(1)


def hard_vote_groups(scores: np.ndarray,
                     radices: Sequence[int],
                     weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """Hard vote per label group of a mixed-radix joint label.

    Each model's joint argmax is decoded into group labels (e.g. mask,
    gender, age for radices ``(3, 2, 3)``), every group is voted on
    separately (ties by the summed group marginal) and the winners are
    re-encoded.
    """
    from mmplugins.models.heads.multi_group_cls_head import (decode_groups,
                                                             encode_groups)
    scores = np.asarray(scores, dtype=np.float64)
    num_models, n, c = scores.shape
    if int(np.prod(radices)) != c:
        raise ValueError(f'groups {tuple(radices)} make {np.prod(radices)} '
                         f'joint classes but the scores have {c}')
    digits = decode_groups(np.arange(c), radices)
    winners = []
    for g, k in enumerate(radices):
        # marginal score of every group class
        marg = np.stack([scores[..., digits[g] == j].sum(-1)
                         for j in range(k)], -1)  # (M, N, k)
        winners.append(hard_vote(marg, weights))
    return np.asarray(encode_groups(winners, radices))


def image_ids(paths: Sequence[str], mode: str = 'auto') -> List[str]:
    """Submission ImageIDs: file basenames, or paths relative to the common
    folder when basenames repeat (``mode='auto'``)."""
    base = [osp.basename(p) for p in paths]
    if mode == 'basename' or (mode == 'auto'
                              and len(set(base)) == len(base)):
        if len(set(base)) != len(base):
            dup = Counter(base).most_common(1)[0][0]
            raise ValueError(f'ImageID {dup!r} repeats with --image-id '
                             'basename; use --image-id relpath')
        return base
    if mode not in ('auto', 'relpath'):
        raise ValueError(f'unknown --image-id mode {mode!r}')
    root = osp.commonpath([osp.abspath(p) for p in paths]) if len(
        paths) > 1 else osp.dirname(osp.abspath(paths[0]))
    return [osp.relpath(osp.abspath(p), root) for p in paths]


# ---------------------------------------------------------------------------
# file handling
# ---------------------------------------------------------------------------


def load_predictions(path: str) -> dict:
    """``{key: record}`` of one DumpResults pickle (key = img_path)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'prediction file not found: {path}')
    with open(path, 'rb') as f:
        records = pickle.load(f)
    if not isinstance(records, list) or not records:
        raise ValueError(f'{path}: expected a non-empty list of per-image '
                         'predictions (tools/test.py --out), got '
                         f'{type(records).__name__}')
    out = {}
    for i, r in enumerate(records):
        if not isinstance(r, dict) or 'pred_score' not in r:
            raise KeyError(f'{path}: record {i} has no pred_score (keys: '
                           f'{sorted(r) if isinstance(r, dict) else r})')
        key = r.get('img_path', r.get('sample_idx'))
        if key is None:
            raise KeyError(f'{path}: record {i} has neither img_path nor '
                           'sample_idx to align the models on')
        if key in out:
            raise ValueError(f'{path}: image {key} predicted twice')
        out[key] = r
    return out


def stack_predictions(files: Sequence[str]):
    """Align the files on their images -> keys, (M, N, C) scores, gt|None."""
    preds = [load_predictions(f) for f in files]
    keys = list(preds[0])
    for f, p in zip(files[1:], preds[1:]):
        missing = [k for k in keys if k not in p]
        extra = [k for k in p if k not in preds[0]]
        if missing or extra:
            raise ValueError(
                f'{f}: predicts other images than {files[0]} '
                f'(missing {len(missing)}, e.g. {missing[:1]}; extra '
                f'{len(extra)}, e.g. {extra[:1]})')
    scores = np.stack([
        np.stack([np.asarray(p[k]['pred_score'], np.float64) for k in keys])
        for p in preds
    ])
    gt = None
    if all('gt_label' in preds[0][k] for k in keys):
        gt = np.array([int(np.asarray(preds[0][k]['gt_label']).reshape(-1)[0])
                       for k in keys])
    return keys, scores, gt


def write_submission(out: str, ids: Sequence[str], labels: Sequence[int],
                     info_csv: Optional[str] = None) -> int:
    """Write ``ImageID,ans``; returns the number of rows."""
    pred = dict(zip(ids, (int(v) for v in labels)))
    order = list(ids)
    if info_csv is not None:
        with open(info_csv, newline='') as f:
            reader = csv.DictReader(f)
            if 'ImageID' not in (reader.fieldnames or []):
                raise KeyError(f'{info_csv}: needs an "ImageID" column, got '
                               f'{reader.fieldnames}')
            order = [row['ImageID'] for row in reader]
        missing = [i for i in order if i not in pred]
        if missing:
            raise KeyError(f'{info_csv}: {len(missing)} ImageIDs have no '
                           f'prediction, e.g. {missing[0]!r}')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(('ImageID', 'ans'))
        for i in order:
            w.writerow((i, pred[i]))
    return len(order)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Soft/hard voting ensemble of prediction files')
    parser.add_argument('preds', nargs='+',
                        help='prediction .pkl files (tools/test.py --out)')
    parser.add_argument('--mode', choices=('soft', 'hard'), default='soft')
    parser.add_argument('--weights', type=float, nargs='+',
                        help='one weight per prediction file')
    parser.add_argument('--groups', type=int, nargs='+',
                        help='hard voting per label group of the joint '
                        'label, e.g. 3 2 3 for mask/gender/age')
    parser.add_argument('--out', required=True, help='submission CSV')
    parser.add_argument('--info-csv',
                        help="row order and ImageIDs (competition's "
                        'eval/info.csv)')
    parser.add_argument('--image-id', choices=('auto', 'basename', 'relpath'),
                        default='auto')
    parser.add_argument('--save-scores',
                        help='also save the merged scores (.npy, soft mode)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.groups and args.mode != 'hard':
        raise ValueError('--groups is a hard-voting option (use --mode hard)')
    keys, scores, gt = stack_predictions(args.preds)
    if args.mode == 'soft':
        labels, merged = soft_vote(scores, args.weights)
        if args.save_scores:
            np.save(args.save_scores, merged)
    elif args.groups:
        labels = hard_vote_groups(scores, args.groups, args.weights)
    else:
        labels = hard_vote(scores, args.weights)
    if isinstance(keys[0], str):
        ids = image_ids(keys, args.image_id)
    else:
        ids = [str(k) for k in keys]
    rows = write_submission(args.out, ids, labels, args.info_csv)
    report = dict(rows=rows, out=args.out)
    if gt is not None:
        from mmplugins.evaluation.metrics.mask_f1 import macro_f1
        c = scores.shape[2]
        report['inputs_f1'] = [
            100 * macro_f1(gt, s.argmax(1), c) for s in scores
        ]
        report['ensemble_f1'] = 100 * macro_f1(gt, labels, c)
        for f, v in zip(args.preds, report['inputs_f1']):
            print(f'{f}: macro-F1 {v:.2f}')
        print(f'ensemble ({args.mode}): macro-F1 '
              f'{report["ensemble_f1"]:.2f}')
    print(f'wrote {rows} rows to {args.out}')
    return report


if __name__ == '__main__':
    main()
