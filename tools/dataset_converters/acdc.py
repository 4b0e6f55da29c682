"""Flatten ACDC's per-condition folders into one folder per split, as the
reference's README does with ``rsync``.

    python tools/dataset_converters/acdc.py data/acdc [--link hard]

ACDC unpacks to ``rgb_anon/COND/SPLIT/SEQ/*_rgb_anon.png`` and
``gt/COND/SPLIT/SEQ/*_gt_*.png`` for the conditions fog, night, rain and
snow. This copies (or links) every ``rgb_anon/*/SPLIT/*/*`` image to
``rgb_anon/SPLIT/`` for train, val and test, and every
``gt/*/SPLIT/*/*_labelTrainIds.png`` to ``gt/SPLIT/`` for train and val
(test labels are on the evaluation server only), the layout
``ACDCDataset`` and the reference configs read
(``img_dir='rgb_anon/train'``, ``ann_dir='gt/train'``). The ``*_ref``
splits (reference images of the same places) are not used, as in the
reference.

Every condition folder must be there (one error naming the missing ones);
two files of the same name from different folders are an error, not an
overwrite. Each file is written to a temporary name and renamed into place;
existing outputs of the same size are kept.
"""
import argparse
import os
import os.path as osp
import shutil
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from mmplugins.datasets.acdc import ACDC_CONDITIONS  # noqa: E402

LABELLED_SPLITS = ('train', 'val')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('acdc_root', help='folder holding rgb_anon/ and gt/')
    p.add_argument('--splits', nargs='+', default=['train', 'val', 'test'],
                   choices=['train', 'val', 'test'])
    p.add_argument('--link', choices=['copy', 'hard', 'sym'], default='copy',
                   help='copy the files (default, as rsync), or hard/'
                   'symbolic links to them')
    return p.parse_args(argv)


def _sources(root, kind, split, keep):
    """{file name: source path} of ``kind/*/split/*/*`` files."""
    out = {}
    for cond in ACDC_CONDITIONS:
        split_dir = osp.join(root, kind, cond, split)
        if not osp.isdir(split_dir):
            raise SystemExit(
                f'{split_dir}: not a folder. Expected ACDC\'s layout '
                f'{root}/{kind}/{{{",".join(ACDC_CONDITIONS)}}}/{split}/'
                'SEQUENCE/*.png')
        for seq in sorted(os.listdir(split_dir)):
            seq_dir = osp.join(split_dir, seq)
            if not osp.isdir(seq_dir):
                continue
            for f in sorted(os.listdir(seq_dir)):
                if not keep(f):
                    continue
                if f in out:
                    raise SystemExit(f'{osp.join(seq_dir, f)} and {out[f]} '
                                     'have the same name: cannot flatten')
                out[f] = osp.join(seq_dir, f)
    return out


def _place(src, dst, link):
    if osp.exists(dst) and osp.getsize(dst) == osp.getsize(src):
        return 'kept'
    tmp = dst + '.tmp'
    if osp.lexists(tmp):
        os.remove(tmp)
    if link == 'hard':
        os.link(src, tmp)
    elif link == 'sym':
        os.symlink(osp.abspath(src), tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return 'written'


def main(argv=None):
    args = parse_args(argv)
    root = args.acdc_root
    kinds = [('rgb_anon', lambda f: f.endswith('.png'))]
    if any(s in LABELLED_SPLITS for s in args.splits):
        kinds.append(('gt', lambda f: f.endswith('_labelTrainIds.png')))
    # check the whole layout before writing anything
    missing = [osp.join(root, kind, c) for kind, _ in kinds
               for c in ACDC_CONDITIONS
               if not osp.isdir(osp.join(root, kind, c))]
    if missing:
        raise SystemExit(
            f'ACDC condition folder(s) missing: {", ".join(missing)}. '
            f'Expected {root}/rgb_anon/{{{",".join(ACDC_CONDITIONS)}}}/'
            'SPLIT/SEQUENCE/ (rgb_anon_trainvaltest.zip) and the same under '
            f'{root}/gt/ (gt_trainval.zip)')
    plan = []
    for kind, keep in kinds:
        for split in args.splits:
            if kind == 'gt' and split not in LABELLED_SPLITS:
                continue
            files = _sources(root, kind, split, keep)
            if not files:
                raise SystemExit(f'{root}/{kind}/*/{split}: no files')
            plan.append((kind, split, files))
    for kind, split, files in plan:
        out_dir = osp.join(root, kind, split)
        os.makedirs(out_dir, exist_ok=True)
        status = {}
        for name, src in files.items():
            s = _place(src, osp.join(out_dir, name), args.link)
            status[s] = status.get(s, 0) + 1
        print(f'{out_dir}: {len(files)} files (' + ', '.join(
            f'{v} {k}' for k, v in sorted(status.items())) + ')')


if __name__ == '__main__':
    main()
