"""Class statistics throughput: label maps/s at 512x1024, serial vs parallel.

Renders a few demo label maps at 512x1024 with ``make_samsung_demo`` (the
demo layout, realistic PNG content), replicates them to ``--num-maps`` files
(decoding cost is per file, so copies measure the same work), then times
:func:`compute_class_pixel_counts` (no cache) with 1 and ``--nproc``
processes, and a cache hit of :func:`compute_class_stats`. Checks that both
computations agree. Goal: >= 300 maps/s with 2 processes on 2 cores.
Writes ``bench/results/class_stats.{json,md}``.

Example::

    python bench/class_stats_bench.py --num-maps 400 --nproc 2
    taskset -c 0,1 python bench/class_stats_bench.py   # pin to 2 cores
"""
import argparse
import json
import os
import os.path as osp
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import write_results  # noqa: E402

GOAL = 300.0  # maps/s, 2 processes


def load_class_stats(standalone):
    """The class_stats module: through the package, or by file path.

    ``standalone`` skips ``mmplugins/__init__`` (which imports the whole
    OpenMMLab stack), for a machine that has only numpy, cv2 and mmengine.
    The code measured is the same file.
    """
    if not standalone:
        from mmplugins.datasets import class_stats
        return class_stats
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmplugins_class_stats',
        osp.join(ROOT, 'mmplugins', 'datasets', 'class_stats.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # forked pool workers look it up here
    spec.loader.exec_module(module)
    return module


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--height', type=int, default=512)
    parser.add_argument('--width', type=int, default=1024)
    parser.add_argument('--num-maps', type=int, default=400)
    parser.add_argument('--num-unique', type=int, default=8,
                        help='distinct demo label maps rendered')
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--synthetic', action='store_true',
                        help='skip the demo renderer, draw simple maps')
    parser.add_argument('--labels-from',
                        help='use the label PNGs of this folder as the '
                        'distinct maps (e.g. a demo train_source_gt/)')
    parser.add_argument('--standalone', action='store_true',
                        help='load class_stats.py by path, without the '
                        'OpenMMLab stack (see load_class_stats)')
    parser.add_argument('--work-dir', help='where the maps go (default: a '
                        'temporary folder, removed afterwards)')
    parser.add_argument('--out-dir', default=osp.join(ROOT, 'bench',
                                                      'results'))
    return parser.parse_args()


def _synthetic_label(rng, h, w):
    import cv2
    label = np.full((h, w), 8, np.uint8)  # sky
    horizon = int(h * rng.uniform(0.35, 0.5))
    label[horizon:] = 0  # road
    label[horizon - h // 8:horizon] = 7  # nature
    for _ in range(25):
        c = int(rng.integers(0, 12))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(label, (x, y), (x + int(rng.integers(8, w // 6)),
                                      y + int(rng.integers(8, h // 4))),
                      c, -1)
    cv2.circle(label, (w // 2, h // 2), int(rng.integers(10, h // 6)), 255,
               -1)
    return label


def make_maps(root, args):
    """Write ``args.num_maps`` label maps; returns (paths, source)."""
    import cv2
    gt_dir = osp.join(root, 'train_source_gt')
    source = 'synthetic'
    if args.labels_from:
        os.makedirs(gt_dir, exist_ok=True)
        names = sorted(f for f in os.listdir(args.labels_from)
                       if f.endswith('.png'))[:args.num_unique]
        if not names:
            raise FileNotFoundError(f'no *.png in {args.labels_from}')
        for f in names:
            shutil.copyfile(osp.join(args.labels_from, f),
                            osp.join(gt_dir, f))
        source = f'copies of {len(names)} maps from {args.labels_from}'
    elif not args.synthetic:
        try:
            from mmplugins.datasets.demo.samsung_demo import make_samsung_demo
            make_samsung_demo(
                root, num_train_source=args.num_unique, num_val_source=0,
                num_train_target=0, num_val_target=0, num_test=0,
                height=args.height, width=args.width,
                num_workers=min(args.nproc, args.num_unique))
            source = 'make_samsung_demo'
        except ImportError:
            pass
    os.makedirs(gt_dir, exist_ok=True)
    unique = sorted(
        osp.join(gt_dir, f) for f in os.listdir(gt_dir) if f.endswith('.png'))
    if not unique:
        rng = np.random.default_rng(0)
        for i in range(args.num_unique):
            p = osp.join(gt_dir, f'TRAIN_SOURCE_{i:04d}.png')
            cv2.imwrite(p, _synthetic_label(rng, args.height, args.width))
            unique.append(p)
    paths = list(unique)
    for i in range(len(unique), args.num_maps):
        p = osp.join(gt_dir, f'TRAIN_SOURCE_{i:04d}.png')
        shutil.copyfile(unique[i % len(unique)], p)
        paths.append(p)
    return paths[:args.num_maps], source


def time_it(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    args = parse_args()
    cs = load_class_stats(args.standalone)
    compute_class_pixel_counts = cs.compute_class_pixel_counts
    compute_class_stats = cs.compute_class_stats
    root = args.work_dir or tempfile.mkdtemp(prefix='class_stats_bench_')
    try:
        paths, source = make_maps(root, args)
        n = len(paths)
        # warm the page cache: measure decoding, not the disk
        for p in paths:
            with open(p, 'rb') as f:
                f.read()
        t1, serial = time_it(
            lambda: compute_class_pixel_counts(paths, 12, nproc=1),
            args.repeats)
        tp, parallel = time_it(
            lambda: compute_class_pixel_counts(paths, 12, nproc=args.nproc),
            args.repeats)
        assert np.array_equal(serial, parallel), 'parallel != serial'
        first = compute_class_stats(paths, 12, nproc=args.nproc)
        tc, hit = time_it(
            lambda: compute_class_stats(paths, 12, nproc=args.nproc),
            args.repeats)
        assert hit.status == 'loaded' and np.array_equal(hit.counts,
                                                         serial)
        mean_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
    finally:
        if not args.work_dir:
            shutil.rmtree(root, ignore_errors=True)

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    result = dict(
        bench='class_stats', height=args.height, width=args.width,
        num_maps=n, label_source=source, mean_png_kb=round(mean_kb, 1),
        nproc=args.nproc, usable_cores=cores,
        serial_maps_per_s=round(n / t1, 1),
        parallel_maps_per_s=round(n / tp, 1),
        speedup=round(t1 / tp, 2),
        cache_hit_s=round(tc, 4), cache_write_status=first.status,
        goal_maps_per_s=GOAL,
        goal_met=bool(n / tp >= GOAL), repeats=args.repeats,
        python=platform.python_version(), machine=platform.machine(),
        processor=platform.processor() or platform.machine(),
        default_nproc=cs.default_nproc(),
        date=time.strftime('%Y-%m-%d %H:%M:%S'))
    print(json.dumps(result, indent=2))
    md = [
        '# Class statistics throughput', '',
        f'{n} label maps {args.height}x{args.width} ({source}, '
        f'{result["mean_png_kb"]} KiB PNG on average), page cache warm, '
        f'{cores} usable cores, median of {args.repeats}.', '',
        '| processes | maps/s | speed-up |', '| --- | --- | --- |',
        f'| 1 | {result["serial_maps_per_s"]} | 1.00 |',
        f'| {args.nproc} | {result["parallel_maps_per_s"]} | '
        f'{result["speedup"]} |', '',
        f'Cache hit (fingerprint of {n} files + load): '
        f'{result["cache_hit_s"] * 1000:.1f} ms.', '',
        f'Goal >= {GOAL:.0f} maps/s with 2 processes: '
        f'{"met" if result["goal_met"] else "NOT met"}.'
    ]
    write_results('class_stats', result, md, args.out_dir)


if __name__ == '__main__':
    main()
