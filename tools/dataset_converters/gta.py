"""Convert GTA5 labels (Cityscapes label ids) to Cityscapes train ids.

    python tools/dataset_converters/gta.py data/gta [--nproc 8]

Reads ``labels/NAME.png`` and writes ``labels/NAME_labelTrainIds.png``
(uint8, 19 classes, 255 = ignore) next to it, as DAFormer's converter does,
so ``GTADataset`` (``configs/_base_/datasets/gta.py``) can read them.
Existing outputs are kept unless ``--overwrite``. A few GTA5 frames have a
label whose size differs from the image; they are listed, and with
``--fix-sizes`` the converted label is resized to the image (nearest), since
``CheckSegLabel`` in the training pipeline rejects a size mismatch.
"""
import argparse
import multiprocessing as mp
import os
import os.path as osp
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from mmplugins.datasets.gta import label_ids_to_train_ids  # noqa: E402

SUFFIX = '_labelTrainIds.png'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('gta_root', help='folder holding images/ and labels/')
    p.add_argument('--nproc', type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--fix-sizes', action='store_true',
                   help='resize labels whose size differs from the image')
    return p.parse_args(argv)


def convert_one(job):
    """(label path, image path, overwrite, fix) -> (status, label path)."""
    label_path, img_path, overwrite, fix = job
    out = label_path[:-len('.png')] + SUFFIX
    if osp.exists(out) and not overwrite:
        return 'kept', label_path
    with Image.open(label_path) as im:
        # palette PNG: the indices are the ids (do not convert to RGB)
        ids = np.asarray(im if im.mode in ('P', 'L') else im.convert('L'))
    train_ids = label_ids_to_train_ids(ids)
    status = 'converted'
    if img_path is not None:
        with Image.open(img_path) as im:
            w, h = im.size
        if (h, w) != train_ids.shape:
            if not fix:
                return f'size {train_ids.shape[::-1]} vs image {(w, h)}', \
                    label_path
            train_ids = np.asarray(Image.fromarray(train_ids).resize(
                (w, h), Image.NEAREST))
            status = 'resized'
    tmp = out + '.tmp.png'
    Image.fromarray(train_ids).save(tmp)
    os.replace(tmp, out)
    return status, label_path


def main(argv=None):
    args = parse_args(argv)
    label_dir = osp.join(args.gta_root, 'labels')
    img_dir = osp.join(args.gta_root, 'images')
    for d in (label_dir, img_dir):
        if not osp.isdir(d):
            raise SystemExit(f'{d}: not a folder. Expected the GTA5 layout '
                             f'{args.gta_root}/images/*.png and '
                             f'{args.gta_root}/labels/*.png.')
    names = sorted(f for f in os.listdir(label_dir)
                   if f.endswith('.png') and not f.endswith(SUFFIX))
    if not names:
        raise SystemExit(f'{label_dir}: no label PNGs to convert.')
    jobs = []
    for f in names:
        img = osp.join(img_dir, f)
        jobs.append((osp.join(label_dir, f), img if osp.exists(img) else None,
                     args.overwrite, args.fix_sizes))
    if args.nproc > 1:
        with mp.Pool(args.nproc) as pool:
            results = pool.map(convert_one, jobs, chunksize=16)
    else:
        results = [convert_one(j) for j in jobs]
    counts = {}
    bad = []
    for status, path in results:
        key = status if not status.startswith('size') else 'size mismatch'
        counts[key] = counts.get(key, 0) + 1
        if status.startswith('size'):
            bad.append(f'{path}: {status}')
    no_img = sum(1 for j in jobs if j[1] is None)
    print(f'{len(jobs)} labels in {label_dir}: ' + ', '.join(
        f'{v} {k}' for k, v in sorted(counts.items())) +
        (f'; {no_img} without an image in {img_dir}' if no_img else ''))
    if bad:
        print('\n'.join(bad[:20]))
        raise SystemExit(f'{len(bad)} labels differ in size from their image '
                         'and were not written; rerun with --fix-sizes to '
                         'resize them (nearest).')


if __name__ == '__main__':
    main()
