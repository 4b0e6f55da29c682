"""Ensemble detection results of several models: WBF or NMS.

The reference (1st place, 2021 driver-inattention detection) ensembled the
diet-trained and the fine-tuned models. Inputs are COCO results files (a
list of ``{image_id, category_id, bbox: [x, y, w, h], score}``, what mmdet's
``CocoMetric(outfile_prefix=...)`` or ``tools/test.py`` with
``--cfg-options test_evaluator.outfile_prefix=...`` writes)::

    python tools/ensemble_det.py a.bbox.json b.bbox.json --out ens.bbox.json \
        --method wbf --iou-thr 0.55 \
        --ann-file data/driver_demo/annotations/instances_val.json

* ``wbf`` (weighted boxes fusion, Solovyev et al. 2021): per image and
  class, boxes of all models are clustered greedily in score order (IoU with
  the cluster's fused box > ``iou_thr``); a cluster's box is the
  score-weighted mean of its boxes, its score the mean score times
  ``min(n_boxes, n_models) / n_models`` (boxes only one model found are
  down-weighted).
* ``nms``: pool all boxes, per-class greedy NMS at ``iou_thr``.

Model weights scale each model's scores.
"""
import argparse
import json
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ['weighted_boxes_fusion', 'nms', 'ensemble_results',
           'ensemble_files']


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with an (N, 4) xyxy array."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_boxes_fusion(boxes: np.ndarray, scores: np.ndarray,
                          num_models: int, iou_thr: float = 0.55):
    """Fuse one class's boxes (xyxy, (N, 4)) of ``num_models`` models.

    Returns ``(fused_boxes (M, 4), fused_scores (M, ))``.
    """
    order = np.argsort(-scores, kind='stable')
    fused, members = [], []          # fused xyxy, [(box, score), ...]
    for i in order:
        if fused:
            ious = _iou_one_to_many(boxes[i], np.asarray(fused))
            j = int(np.argmax(ious))
            if ious[j] > iou_thr:
                members[j].append(i)
                w = scores[members[j]]
                fused[j] = (boxes[members[j]] * w[:, None]).sum(0) / w.sum()
                continue
        fused.append(boxes[i].astype(np.float64))
        members.append([i])
    out_boxes = np.asarray(fused, dtype=np.float64).reshape(-1, 4)
    out_scores = np.array([
        scores[m].mean() * min(len(m), num_models) / num_models
        for m in members
    ])
    return out_boxes, out_scores


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = 0.55):
    """Greedy NMS; returns the kept indices in score order."""
    order = np.argsort(-scores, kind='stable')
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        if len(order) == 1:
            break
        ious = _iou_one_to_many(boxes[i], boxes[order[1:]])
        order = order[1:][ious <= iou_thr]
    return np.asarray(keep, dtype=np.int64)


def ensemble_results(results: Sequence[List[dict]],
                     method: str = 'wbf',
                     iou_thr: float = 0.55,
                     weights: Optional[Sequence[float]] = None,
                     skip_score: float = 0.0,
                     max_per_img: int = 100) -> List[dict]:
    """Ensemble lists of COCO result dicts (one list per model)."""
    if method not in ('wbf', 'nms'):
        raise ValueError(f"method must be 'wbf' or 'nms', got {method!r}")
    if not 0 < iou_thr < 1:
        raise ValueError(f'iou_thr must be in (0, 1), got {iou_thr}')
    weights = [1.0] * len(results) if weights is None else list(weights)
    if len(weights) != len(results):
        raise ValueError(f'{len(weights)} weights for {len(results)} models')
    groups: Dict[tuple, list] = defaultdict(list)
    for w, dets in zip(weights, results):
        for d in dets:
            if d['score'] >= skip_score:
                x, y, bw, bh = d['bbox']
                groups[(d['image_id'], d['category_id'])].append(
                    (x, y, x + bw, y + bh, d['score'] * w))
    per_image: Dict[int, list] = defaultdict(list)
    for (image_id, cat_id), rows in groups.items():
        arr = np.asarray(rows, dtype=np.float64)
        boxes, scores = arr[:, :4], arr[:, 4]
        if method == 'wbf':
            boxes, scores = weighted_boxes_fusion(boxes, scores,
                                                  len(results), iou_thr)
        else:
            keep = nms(boxes, scores, iou_thr)
            boxes, scores = boxes[keep], scores[keep]
        for b, s in zip(boxes, scores):
            per_image[image_id].append(dict(
                image_id=image_id, category_id=cat_id,
                bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]),
                      float(b[3] - b[1])], score=float(s)))
    out = []
    for image_id in sorted(per_image):
        dets = sorted(per_image[image_id], key=lambda d: -d['score'])
        out += dets[:max_per_img]
    return out


def ensemble_files(pred_files: Sequence[str], out_file: str, **kwargs):
    """Read COCO results files, ensemble, write ``out_file``."""
    results = []
    for path in pred_files:
        with open(path) as f:
            results.append(json.load(f))
    out = ensemble_results(results, **kwargs)
    with open(out_file, 'w') as f:
        json.dump(out, f)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Ensemble COCO detection results (WBF or NMS)')
    parser.add_argument('preds', nargs='+', help='COCO results json files')
    parser.add_argument('--out', required=True, help='output results json')
    parser.add_argument('--method', choices=['wbf', 'nms'], default='wbf')
    parser.add_argument('--iou-thr', type=float, default=0.55)
    parser.add_argument('--weights', type=float, nargs='+', default=None)
    parser.add_argument('--skip-score', type=float, default=0.0)
    parser.add_argument('--ann-file', default=None,
                        help='COCO annotations: print the bbox AP of each '
                        'input and of the ensemble')
    args = parser.parse_args(argv)
    ensemble_files(args.preds, args.out, method=args.method,
                   iou_thr=args.iou_thr, weights=args.weights,
                   skip_score=args.skip_score)
    print(f'wrote {args.out}')
    if args.ann_file:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        gt = COCO(args.ann_file)
        for path in list(args.preds) + [args.out]:
            ev = COCOeval(gt, gt.loadRes(path), 'bbox')
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            print(f'{path}: AP {ev.stats[0]:.4f} AP50 {ev.stats[1]:.4f}')


if __name__ == '__main__':
    main()
