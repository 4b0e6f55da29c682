"""From demo checkpoints to a submission: what TTA and ensembling buy, and
what they cost (``tools/predict.py``).

1. Trains the demo (``tools/demo.py``: source-only warm start + MIC/dual
   UDA, ``configs/mic_dual_aug.py``) once per ``--seeds`` entry (checkpoints
   are reused when present).
2. Predicts the labelled target val split with ``tools/predict.py``'s
   predictor as unlabelled images and scores the PNGs against the labels
   (mIoU over the split, as mmseg's ``IoUMetric``): each seed's model,
   each with ``--tta`` (the config's flips x scales), and the soft ensemble
   of all seeds' checkpoints (with and without TTA); images/s of each.
3. Memory: a child process predicts ``--rss-images`` images (links to the
   val frames under new names) into the Samsung CSV, one model, batch 1,
   and reports its resident memory after 100 images and at the end.

Example (what bench/results/predict.json was made with is in its
``provenance.command``)::

    OMP_NUM_THREADS=1 python bench/predict_bench.py --seeds 0 1 2
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np

from _common import (ROOT, current_rss_mb, machine_info, md_table,
                     peak_rss_mb, run_json_subprocess, write_results)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--warm-iters', type=int, default=600)
    p.add_argument('--iters', type=int, default=150)
    p.add_argument('--num-val', type=int, default=50,
                   help='labelled target val images (demo default 50)')
    p.add_argument('--num-train', type=int, default=200,
                   help='source and target train images (demo default)')
    p.add_argument('--rss-images', type=int, default=1000)
    p.add_argument('--work-dir', default='work_dirs/predict_bench')
    p.add_argument('--out-dir', default=None,
                   help='results folder (default bench/results)')
    p.add_argument('--render', metavar='JSON',
                   help='only re-render the tables of a predict.json')
    p.add_argument('--rss-child', nargs=4, metavar=('CFG', 'CKPT', 'DIR',
                                                    'OUT'),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def miou(pred_dir, gt_dir, num_classes=12, ignore=255):
    """mIoU (%) over the split, as mmseg IoUMetric (classes absent from
    both prediction and labels are NaN and skipped)."""
    import cv2
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for name in sorted(os.listdir(gt_dir)):
        gt = cv2.imread(osp.join(gt_dir, name), cv2.IMREAD_UNCHANGED)
        pr = cv2.imread(osp.join(pred_dir, name), cv2.IMREAD_UNCHANGED)
        valid = gt != ignore
        g, q = gt[valid].astype(int), pr[valid].astype(int)
        ai = np.bincount(g[g == q], minlength=num_classes)[:num_classes]
        ag = np.bincount(g, minlength=num_classes)[:num_classes]
        ap = np.bincount(q, minlength=num_classes)[:num_classes]
        inter += ai
        union += ag + ap - ai
    with np.errstate(invalid='ignore', divide='ignore'):
        return float(np.nanmean(inter / union) * 100)


def rss_child(cfg, ckpt, img_dir, out):
    """One model, batch 1, into the Samsung CSV; RSS after 100 and N."""
    sys.path.insert(0, ROOT)
    from mmplugins.submission.seg_predictor import (SegEnsemblePredictor,
                                                    list_images)
    from mmplugins.submission.writer import SUBMISSION_WRITERS
    paths = list_images(img_dir)
    pred = SegEnsemblePredictor([(cfg, ckpt)])
    cls = SUBMISSION_WRITERS.get('samsung')
    marks = {}

    class Probe(cls):
        def write(self, img_path, p):
            super().write(img_path, p)
            n = self.count + 1
            if n in (10, 100, len(paths)) or n % 250 == 0:
                marks[n] = dict(rss_mb=current_rss_mb(),
                                peak_rss_mb=peak_rss_mb())

    t0 = time.perf_counter()
    n = pred.run(paths, Probe(out, pred.classes), progress=False)
    sec = time.perf_counter() - t0
    print(json.dumps(dict(images=n, seconds=sec, marks=marks,
                          csv_mb=os.path.getsize(out) / 2**20)))


def ensure_data(ws, args):
    root = osp.join(ws, 'data', 'samsung_demo')
    stamp = osp.join(root, 'val_target.csv')
    if not osp.isfile(stamp):
        from mmplugins.datasets.demo.samsung_demo import make_samsung_demo
        make_samsung_demo(root, num_train_source=args.num_train,
                          num_val_source=2,
                          num_train_target=args.num_train,
                          num_val_target=args.num_val, num_test=0, seed=0,
                          num_workers=0)
    return root


def train_seed(ws, seed, args):
    wd = osp.join(ws, f'seed{seed}')
    ckpt = osp.join(wd, 'mic_dual_aug', f'iter_{args.iters}.pth')
    cfg = osp.join(wd, 'mic_dual_aug', 'mic_dual_aug.py')
    if not osp.isfile(ckpt):
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'demo.py'),
               '--config', osp.join(ROOT, 'configs', 'mic_dual_aug.py'),
               '--warm-iters', str(args.warm_iters), '--iters',
               str(args.iters), '--seed', str(seed), '--workers', '0',
               '--work-dir', wd, '--cfg-options',
               'val_dataloader.num_workers=0',
               'val_dataloader.persistent_workers=False']
        subprocess.run(cmd, cwd=ws, check=True)
    return cfg, ckpt


def render(result, out_dir=None):
    """``predict.{json,md}`` (quality and speed) and
    ``predict_memory.{json,md}`` (RSS over the images), one table each."""
    rows = result['rows']
    md = [f'Demo target val ({result["num_val"]} images), '
          f'configs/mic_dual_aug.py, warm start {result["warm_iters"]} it '
          f'+ UDA {result["iters"]} it, seeds {result["seeds"]}; CPU, '
          'images/s noisy (shared machine).', '']
    md += md_table(['variant', 'models', 'TTA views', 'target mIoU',
                    'images/s'],
                   [[r['variant'], r['models'], 12 if r['tta'] else 1,
                     f"{r['mIoU']:.2f}", f"{r['images_per_s']:.3f}"]
                    for r in rows] +
                   [[f'single, mean ± std of {len(result["seeds"])} seeds',
                     1, 12 if key == 'single_tta' else 1,
                     f"{result[key]['mIoU']['mean']:.2f} ± "
                     f"{result[key]['mIoU']['std']:.2f}",
                     f"{result[key]['images_per_s']['mean']:.3f}"]
                    for key in ('single', 'single_tta')])
    write_results('predict', result, md, out_dir)
    rss = result['rss']
    marks = sorted((int(k), v) for k, v in rss['marks'].items())
    mem = dict(rss=rss, provenance=result.get('provenance'))
    if mem['provenance'] is None:
        mem.pop('provenance')
    md = [f'tools/predict.py memory: {rss["images"]} images (256x512), one '
          'model, batch 1, samsung CSV; resident memory of the process '
          'after N images.', '']
    md += md_table(['images predicted', 'RSS MiB', 'peak RSS MiB'],
                   [[n, round(v['rss_mb']), round(v['peak_rss_mb'])]
                    for n, v in marks])
    write_results('predict_memory', mem, md, out_dir)


def main(argv=None):
    args = parse_args(argv)
    if args.rss_child:
        return rss_child(*args.rss_child)
    if args.render:
        with open(args.render) as f:
            return render(json.load(f), args.out_dir)
    ws = osp.abspath(args.work_dir)
    os.makedirs(ws, exist_ok=True)
    root = ensure_data(ws, args)
    img_dir = osp.join(root, 'val_target_image')
    gt_dir = osp.join(root, 'val_target_gt')
    t_train = time.perf_counter()
    models = [train_seed(ws, s, args) for s in args.seeds]
    t_train = time.perf_counter() - t_train

    sys.path.insert(0, ROOT)
    from mmplugins.submission.seg_predictor import (SegEnsemblePredictor,
                                                    list_images)
    from mmplugins.submission.writer import SUBMISSION_WRITERS
    paths = list_images(img_dir)

    def evaluate(name, pairs, tta):
        out = osp.join(ws, 'pred', name)
        pred = SegEnsemblePredictor(pairs, tta=tta)
        writer = SUBMISSION_WRITERS.get('trainids')(out, pred.classes)
        t0 = time.perf_counter()
        n = pred.run(paths, writer, progress=False)
        sec = time.perf_counter() - t0
        row = dict(variant=name, models=len(pairs), tta=tta,
                   mIoU=miou(out, gt_dir), images_per_s=n / sec, images=n)
        print(json.dumps(row), flush=True)
        return row

    rows = []
    for s, pair in zip(args.seeds, models):
        rows.append(dict(evaluate(f'seed{s}', [pair], False), seed=s))
        rows.append(dict(evaluate(f'seed{s}_tta', [pair], True), seed=s))
    if len(models) > 1:
        rows.append(evaluate('ensemble', models, False))
        rows.append(evaluate('ensemble_tta', models, True))

    # memory over --rss-images images (links to the val frames)
    rss_dir = osp.join(ws, f'rss_images_{args.rss_images}')
    if not osp.isdir(rss_dir):
        os.makedirs(rss_dir)
        for i in range(args.rss_images):
            os.symlink(paths[i % len(paths)],
                       osp.join(rss_dir, f'IMG_{i:05d}.png'))
    rss = run_json_subprocess(
        [osp.abspath(__file__), '--rss-child', models[0][0], models[0][1],
         rss_dir, osp.join(ws, 'rss_submission.csv')], timeout=3600,
        env=dict(OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1')))

    def stats(key, tta):
        v = [r[key] for r in rows if 'seed' in r and r['tta'] == tta]
        return dict(mean=float(np.mean(v)), std=float(np.std(v)),
                    values=v)

    result = dict(
        seeds=args.seeds, warm_iters=args.warm_iters, iters=args.iters,
        num_val=len(paths), train_seconds=t_train, rows=rows,
        single=dict(mIoU=stats('mIoU', False),
                    images_per_s=stats('images_per_s', False)),
        single_tta=dict(mIoU=stats('mIoU', True),
                        images_per_s=stats('images_per_s', True)),
        rss=rss, machine=machine_info('cpu'),
        note='CPU shared by other jobs: images/s are noisy; compare '
             'ratios within this run only')
    render(result, args.out_dir)


if __name__ == '__main__':
    main()
