"""Mask classification ablation: 18-way head vs multi-label mask head, with
and without the class-balanced sampler, on the synthetic mask demo data.

Every run is the stock ``tools/train.py`` on a config of ``configs/mask_cls``
(same backbone, schedule, fold and seed; only the head / sampler differ),
validated once at the end on the held-out persons of fold 0. Results go to
``bench/results/mask_cls_ablation.{json,md}`` and the table between the
``<!-- mask_cls_ablation -->`` markers of ``docs/classification.md``.

Regenerate (four runs of 318 iterations; ~45 min measured on 2 CPU cores
shared with four other jobs, a few minutes on idle cores)::

    OMP_NUM_THREADS=2 python bench/mask_cls_ablation.py
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

RUNS = (
    ('18-way LinearClsHead', 'DefaultSampler',
     'configs/mask_cls/single_head_mnv3_demo.py'),
    ('18-way LinearClsHead', 'ClassBalancedSampler',
     'configs/mask_cls/single_head_balanced_mnv3_demo.py'),
    ('MaskLabelHead (3+2+3)', 'DefaultSampler',
     'configs/mask_cls/mask_label_head_mnv3_demo.py'),
    ('MaskLabelHead (3+2+3)', 'ClassBalancedSampler',
     'configs/mask_cls/mask_label_head_balanced_mnv3_demo.py'),
)
KEYS = ('joint_f1', 'joint_acc', 'mask_f1', 'gender_f1', 'age_f1')
MARK = '<!-- mask_cls_ablation -->'


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=osp.join(ROOT, 'data', 'mask_bench'),
                   help='demo data folder (generated when missing)')
    p.add_argument('--persons', type=int, default=300)
    p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--img-size', type=int, default=32,
                   help='training/validation resize (the configs use 64; '
                   '32 keeps the four runs within minutes on 2 cores)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'mask_cls_ablation'))
    p.add_argument('--out', default=osp.join(ROOT, 'bench', 'results',
                                             'mask_cls_ablation'))
    p.add_argument('--no-docs', action='store_true',
                   help='do not update docs/classification.md')
    return p.parse_args()


def train(config, data, epochs, seed, work_dir, img_size):
    opts = [
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        f'param_scheduler.1.T_max={epochs}', f'randomness.seed={seed}',
        'default_hooks.logger.interval=50',
        # no checkpoint files: only the final validation matters here
        'default_hooks.checkpoint.interval=-1',
        'default_hooks.checkpoint.save_best=None',
        'default_hooks.checkpoint.save_last=False'
    ]
    for loader in ('train_dataloader', 'val_dataloader'):
        opts += [f'{loader}.dataset.data_root={data}',
                 # pipeline[1] is the Resize of the dataset base config
                 f'{loader}.dataset.pipeline.1.scale=({img_size},{img_size})',
                 f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
           '--cfg-options'] + opts
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f'{config} failed:\n{proc.stderr[-3000:]}')
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                        'scalars.json')))[-1]
    rows = [json.loads(line) for line in open(scalars)]
    val = [r for r in rows if 'mask/joint_f1' in r][-1]
    return {k: round(val[f'mask/{k}'], 2) for k in KEYS}, wall


def to_markdown(result):
    lines = [
        '| head | sampler | joint macro-F1 | joint acc | mask F1 | '
        'gender F1 | age F1 | train+val wall (s) |',
        '|---|---|---:|---:|---:|---:|---:|---:|',
    ]
    for r in result['runs']:
        m = r['metrics']
        lines.append(f"| {r['head']} | {r['sampler']} | {m['joint_f1']:.2f} "
                     f"| {m['joint_acc']:.2f} | {m['mask_f1']:.2f} | "
                     f"{m['gender_f1']:.2f} | {m['age_f1']:.2f} | "
                     f"{r['wall_s']:.0f} |")
    s = result['setup']
    lines += [
        '',
        f"Demo data: {s['persons']} persons x 7 images (generated at 64 px, "
        f"trained and validated at {s['img_size']} px, seed "
        f"{s['data_seed']}), person-wise fold 0 of 5 "
        f"({s['train_images']} train / {s['val_images']} val images); "
        f"timm `mobilenetv3_small_050` from scratch, AdamW, {s['epochs']} "
        f"epochs, batch 32, training seed {s['seed']}, one run per row. "
        f"Machine: {s['machine']}.",
        '',
        f"Regenerate: `{s['command']}`",
    ]
    return '\n'.join(lines) + '\n'


def update_docs(md):
    doc = osp.join(ROOT, 'docs', 'classification.md')
    if not osp.isfile(doc):
        return
    text = open(doc).read()
    if text.count(MARK) != 2:
        return
    head, _, rest = text.partition(MARK)
    _, _, tail = rest.partition(MARK)
    open(doc, 'w').write(f'{head}{MARK}\n{md}{MARK}{tail}')


def main():
    args = parse_args()
    from mmplugins.datasets.demo.mask_demo import make_mask_demo
    if not osp.isdir(osp.join(args.data, 'images')):
        make_mask_demo(args.data, num_persons=args.persons, eval_persons=0,
                       size=64, seed=0)
    from mmplugins.datasets.mask_dataset import MaskDataset
    n_train = len(MaskDataset(data_root=args.data, split='train'))
    n_val = len(MaskDataset(data_root=args.data, split='val'))
    runs = []
    for head, sampler, config in RUNS:
        name = osp.splitext(osp.basename(config))[0]
        metrics, wall = train(config, args.data, args.epochs, args.seed,
                              osp.join(args.work_dir, name), args.img_size)
        runs.append(dict(head=head, sampler=sampler, config=config,
                         metrics=metrics, wall_s=round(wall, 1)))
        print(f'{head:24s} {sampler:22s} joint F1 {metrics["joint_f1"]:6.2f}'
              f'  age F1 {metrics["age_f1"]:6.2f}  ({wall:.0f} s)',
              flush=True)
    result = dict(
        setup=dict(
            persons=args.persons, data_seed=0, seed=args.seed,
            epochs=args.epochs, train_images=n_train, val_images=n_val,
            img_size=args.img_size,
            machine=f'{platform.machine()} CPU, {os.cpu_count()} cores '
            '(shared with other jobs: wall times are indicative)',
            omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
            command='OMP_NUM_THREADS=2 python bench/mask_cls_ablation.py'),
        runs=runs)
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out + '.json', 'w') as f:
        json.dump(result, f, indent=2)
    md = to_markdown(result)
    with open(args.out + '.md', 'w') as f:
        f.write('# Mask classification ablation\n\n' + md)
    if not args.no_docs:
        update_docs(md)
    print(md)


if __name__ == '__main__':
    main()
