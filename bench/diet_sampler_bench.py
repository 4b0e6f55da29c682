"""Diet sampler index build for 1M images: well under a second.

Synthesises per-image categories for ``--num-images`` images with the demo
data's rates (one face, two eyes, one mouth, rare phone / cigar: ~4.1
instances per image) and times, best of ``--repeat``:

* ``index build``: the reference rules -> the diet subset
  (:func:`diet_select` on the category table), the per-class histograms
  before/after, and one epoch's draw + rank split of the subset
  (:func:`epoch_draw`, :func:`rank_split`). This is what the sampler does
  on top of the dataset's category information. Goal: < 1 s for 1M.
* ``table from lists``: building the category table from 1M Python lists
  (what ``get_cat_ids`` returns), reported separately: its cost is the
  dataset's (mmdet deep-copies every item in ``get_data_info``), paid once.

Writes ``bench/results/diet_sampler.{json,md}``.

Example::

    python bench/diet_sampler_bench.py                # 1M images
    taskset -c 0 python bench/diet_sampler_bench.py   # one core
"""
import argparse
import os
import os.path as osp
import platform
import sys
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import write_results  # noqa: E402

GOAL_S = 1.0
RULES = [
    dict(any_of=['cigar', 'phone']),
    dict(all_of=['eye_closed', 'mouth_closed']),
    dict(all_of=['eye_closed', 'mouth_opened']),
    dict(any_of=['mouth_opened'], keep_every=3),
]


def import_samplers():
    """The sampler modules without ``mmplugins/__init__`` (which imports
    the whole OpenMMLab stack); the code measured is the same files."""
    import types
    if 'mmplugins' not in sys.modules:
        pkg = types.ModuleType('mmplugins')
        pkg.__path__ = [osp.join(ROOT, 'mmplugins')]
        sys.modules['mmplugins'] = pkg
    from mmplugins.datasets.samplers import _category_info, diet_sampler
    from mmplugins.datasets.samplers import epoch_parts_sampler
    return _category_info, diet_sampler, epoch_parts_sampler


def synth_lists(n, seed=0):
    """Per-image instance labels with the demo training rates."""
    from mmplugins.datasets.demo.driver_demo import TRAIN_RATES as r
    rng = np.random.default_rng(seed)
    closed = rng.random(n) < r['eye_closed']
    mouth_open = rng.random(n) < r['mouth_opened']
    phone = rng.random(n) < r['phone']
    cigar = rng.random(n) < r['cigar']
    per_image = []
    for i in range(n):
        eye = 1 if closed[i] else 0
        ids = [eye, eye, 2 if mouth_open[i] else 3, 4]
        if phone[i]:
            ids.append(5)
        if cigar[i]:
            ids.append(6)
        per_image.append(ids)
    return per_image


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=1_000_000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--epoch-parts', type=int, default=2)
    parser.add_argument('--world-size', type=int, default=8)
    parser.add_argument('--out-dir', default=osp.join(ROOT, 'bench',
                                                      'results'))
    args = parser.parse_args(argv)
    cat_mod, diet_mod, eps_mod = import_samplers()
    from mmplugins.datasets.demo.driver_demo import DRIVER_CLASSES

    per_image = synth_lists(args.num_images)
    t_table, info = best_of(
        lambda: cat_mod.CategoryInfo.from_lists(per_image, DRIVER_CLASSES),
        args.repeat)

    def build_index():
        # a fresh table each time: nothing cached between repeats
        fresh = cat_mod.CategoryInfo(info.classes, info.offsets,
                                     info.cat_ids, None, info.unit)
        rules = diet_mod.parse_rules(RULES, fresh.classes)
        sel = diet_mod.diet_select(fresh, rules)
        keep = np.zeros(fresh.num_images, bool)
        keep[sel.indices] = True
        hist = (fresh.histogram(), fresh.histogram(keep))
        draw = eps_mod.epoch_draw(len(sel.indices), args.epoch_parts, 0, 0)
        share = sel.indices[eps_mod.rank_split(draw, 0, args.world_size)]
        return sel, hist, share

    t_index, (sel, hist, share) = best_of(build_index, args.repeat)
    t_draw, _ = best_of(
        lambda: eps_mod.epoch_draw(len(sel.indices), args.epoch_parts, 1, 0),
        args.repeat)
    result = dict(
        num_images=args.num_images,
        num_instances=int(len(info.cat_ids)),
        subset_size=int(len(sel.indices)),
        per_rank_epoch=int(len(share)),
        world_size=args.world_size,
        epoch_parts=args.epoch_parts,
        index_build_s=round(t_index, 4),
        epoch_draw_s=round(t_draw, 4),
        table_from_lists_s=round(t_table, 4),
        goal_s=GOAL_S,
        meets_goal=bool(t_index < GOAL_S),
        full_histogram=hist[0].tolist(),
        diet_histogram=hist[1].tolist(),
        classes=list(DRIVER_CLASSES),
        machine=dict(python=platform.python_version(),
                     processor=platform.processor() or platform.machine(),
                     cpus=os.cpu_count(),
                     omp_threads=os.environ.get('OMP_NUM_THREADS')),
        command='python bench/diet_sampler_bench.py' + ''.join(
            f' {a}' for a in (argv or sys.argv[1:])))
    print(f'{args.num_images:,} images, {len(info.cat_ids):,} instances')
    print(f'index build (rules + histograms + epoch draw/split): '
          f'{t_index:.3f} s  (goal < {GOAL_S:.0f} s: '
          f'{"met" if result["meets_goal"] else "MISSED"})')
    print(f'  diet subset {len(sel.indices):,} images; one epoch draw '
          f'{t_draw * 1000:.1f} ms; {len(share):,} per rank of '
          f'{args.world_size}')
    print(f'category table from {args.num_images:,} Python lists '
          f'(dataset side, once): {t_table:.3f} s')
    write_results('diet_sampler', result, [
        '| images | instances | diet subset | index build (s) | '
        'epoch draw (ms) | table from lists (s) |',
        '|---:|---:|---:|---:|---:|---:|',
        f'| {args.num_images:,} | {len(info.cat_ids):,} | '
        f'{len(sel.indices):,} | {t_index:.3f} | {t_draw * 1000:.1f} | '
        f'{t_table:.3f} |', '', f'`{result["command"]}`'], args.out_dir)
    return result


if __name__ == '__main__':
    main()
