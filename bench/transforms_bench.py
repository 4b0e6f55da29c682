"""Data-pipeline cost of DualBranchAug and FisheyeDistortion (ms / sample).

Times each transform on synthetic uint8 image + label pairs at the given
sizes (one process, ``cv2`` single-threaded like a dataloader worker that
shares the CPU) and writes ``bench/results/transforms.{json,md}``.

Example::

    python bench/transforms_bench.py --sizes 128x256 256x512 --samples 30
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import time

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import write_results  # noqa: E402

from mmplugins.datasets.transforms.dual_branch import DualBranchAug  # noqa
from mmplugins.datasets.transforms.fisheye import (FisheyeDistortion,  # noqa
                                                   fisheye_maps)


def variants():
    """name -> (transform factory, note)."""
    return {
        'DualBranchAug (affine + elastic, defaults)':
        lambda: DualBranchAug(),
        'DualBranchAug (affine + elastic + fisheye 0.5 + ellipse)':
        lambda: DualBranchAug(fisheye=dict(strength=0.5), ellipse_prob=1.0),
        'DualBranchAug (affine only)':
        lambda: DualBranchAug(elastic=None),
        'FisheyeDistortion (strength 0.5, cached map)':
        lambda: FisheyeDistortion(strength=0.5),
        'FisheyeDistortion (strength 0.2..0.8, 8 levels)':
        lambda: FisheyeDistortion(strength=(0.2, 0.8)),
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', nargs='+', default=['128x256', '256x512'])
    parser.add_argument('--samples', type=int, default=30)
    parser.add_argument('--out-dir', default=osp.join(ROOT, 'bench',
                                                      'results'))
    return parser.parse_args()


def main():
    args = parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        h, w = (int(v) for v in size.split('x'))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        seg = rng.integers(0, 12, (h, w), dtype=np.uint8)
        # map construction = the cost of a cache miss
        start = time.perf_counter()
        for _ in range(3):
            fisheye_maps(h, w, 0.5)
        rows.append(dict(transform='fisheye_maps (cache miss, map build)',
                         size=size,
                         ms_per_sample=round(
                             (time.perf_counter() - start) / 3 * 1e3, 3)))
        for name, factory in variants().items():
            transform = factory()
            np.random.seed(0)
            transform(dict(img=img, gt_seg_map=seg))  # warm (maps, albu)
            times = []
            for _ in range(args.samples):
                results = dict(img=img.copy(), gt_seg_map=seg.copy(),
                               seg_fields=['gt_seg_map'])
                start = time.perf_counter()
                transform(results)
                times.append(time.perf_counter() - start)
            rows.append(dict(transform=name, size=size,
                             ms_per_sample=round(
                                 statistics.median(times) * 1e3, 3)))
    lines = ['# Data-pipeline cost (median ms / sample, 1 cv2 thread)', '',
             '| transform | ' + ' | '.join(args.sizes) + ' |',
             '|---|' + '---|' * len(args.sizes)]
    for name in dict.fromkeys(r['transform'] for r in rows):
        cells = [f"{r['ms_per_sample']:.2f}" for r in rows
                 if r['transform'] == name]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    write_results('transforms', dict(samples=args.samples, cv2_threads=1,
                                     rows=rows), lines, args.out_dir)


if __name__ == '__main__':
    main()
