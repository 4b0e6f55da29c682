"""Convert SYNTHIA-RAND-CITYSCAPES labels to Cityscapes train ids, and
compute the class statistics rare class sampling reads.

    python tools/dataset_converters/synthia.py data/synthia [--nproc 8]

Reads every original ``GT/LABELS/NAME.png`` (16-bit, 3 channels, SYNTHIA
class id in the red channel; names ending in a digit, as the reference's
converter selects them) and writes ``GT/LABELS/NAME_labelTrainIds.png``
(uint8, Cityscapes' 19 train ids, 255 = ignore) next to it with the
reference's id table (``mmplugins.datasets.synthia.SYNTHIA_ID_TO_TRAIN_ID``),
each written to a temporary file and renamed into place. Existing outputs
are kept unless ``--overwrite``.

Then, unless ``--no-stats``, the per-image class pixel counts of the
converted labels are computed and cached in
``<root>/.mmplugins_cache/`` (:mod:`mmplugins.datasets.class_stats`, the
cache ``UDADataset(rare_class_sampling=...)`` reads; the reference writes
``sample_class_stats*.json`` for the same purpose) and a per-class summary
is printed.
"""
import argparse
import multiprocessing as mp
import os
import os.path as osp
import sys

from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from mmplugins.datasets.synthia import (  # noqa: E402
    TRAIN_ID_SUFFIX, read_synthia_label, synthia_ids_to_train_ids)

NUM_CLASSES = 19


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('synthia_root', help='folder holding RGB/ and GT/LABELS/')
    p.add_argument('--gt-dir', default='GT/LABELS',
                   help='label folder under the root (default GT/LABELS)')
    p.add_argument('--nproc', type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--no-stats', action='store_true',
                   help='skip the class statistics for RCS')
    return p.parse_args(argv)


def convert_one(job):
    """(label path, overwrite) -> (status, output path)."""
    path, overwrite = job
    out = path[:-len('.png')] + TRAIN_ID_SUFFIX
    if osp.exists(out) and not overwrite:
        return 'kept', out
    train_ids = synthia_ids_to_train_ids(read_synthia_label(path))
    tmp = out + '.tmp.png'
    Image.fromarray(train_ids, mode='L').save(tmp)
    os.replace(tmp, out)
    return 'converted', out


def find_labels(gt_dir):
    """Original label PNGs under ``gt_dir`` (recursive, names ending in a
    digit, i.e. not ``*_labelTrainIds.png``), sorted."""
    found = []
    for dirpath, _, files in os.walk(gt_dir):
        for f in files:
            if f.endswith('.png') and f[-5:-4].isdigit():
                found.append(osp.join(dirpath, f))
    return sorted(found)


def main(argv=None):
    args = parse_args(argv)
    root = args.synthia_root
    gt_dir = osp.join(root, args.gt_dir)
    img_dir = osp.join(root, 'RGB')
    for d in (img_dir, gt_dir):
        if not osp.isdir(d):
            raise SystemExit(
                f'{d}: not a folder. Expected the SYNTHIA-RAND-CITYSCAPES '
                f'layout {root}/RGB/*.png and {root}/{args.gt_dir}/*.png.')
    labels = find_labels(gt_dir)
    if not labels:
        raise SystemExit(f'{gt_dir}: no SYNTHIA label PNGs to convert.')
    jobs = [(p, args.overwrite) for p in labels]
    try:
        if args.nproc > 1 and len(jobs) > 1:
            with mp.Pool(args.nproc) as pool:
                results = pool.map(convert_one, jobs, chunksize=16)
        else:
            results = [convert_one(j) for j in jobs]
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(str(e)) from e
    counts = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    print(f'{len(jobs)} labels in {gt_dir}: ' + ', '.join(
        f'{v} {k}' for k, v in sorted(counts.items())))
    if args.no_stats:
        return
    from mmplugins.datasets.class_stats import compute_class_stats
    from mmseg.datasets import CityscapesDataset
    stats = compute_class_stats([out for _, out in results], NUM_CLASSES,
                                nproc=args.nproc, data_root=root)
    names = CityscapesDataset.METAINFO['classes']
    images = (stats.counts > 0).sum(0)
    print(f'class statistics ({stats.status}): {stats.cache_file}')
    print(f'{"class":<15}{"pixels":>14}{"images":>9}')
    for c, name in enumerate(names):
        print(f'{name:<15}{int(stats.total_pixels[c]):>14}{int(images[c]):>9}')


if __name__ == '__main__':
    main()
