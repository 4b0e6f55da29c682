"""Mask classification ablation: 18-way head vs multi-label mask head, with
and without the class-balanced sampler, on the synthetic mask demo data.

Every run is the stock ``tools/train.py`` on a config of ``configs/mask_cls``
(same backbone, schedule, fold and seed; only the head / sampler differ),
validated once at the end on the held-out persons of fold 0.

``--seeds 0 1 2`` repeats the four runs with every training seed (the data
stays the one generated with seed 0) and writes ONE file: a row per run
(head, sampler, seed, metrics) and, per head/sampler, each metric's
per-seed values with mean ± std (sample std). Every run trains in its own
work dir ``<work-dir>/seed<S>/<config name>``, so seeds never overwrite
each other. An empty or repeated ``--seeds`` is refused.

Results go to ``<out-dir>/mask_cls_ablation.{json,md}`` (``bench/results``;
the JSON carries the provenance block of ``bench/_common.write_results``)
and the table between the ``<!-- mask_cls_ablation -->`` markers of
``docs/classification.md`` (unless ``--no-docs``).

Regenerate (four runs per seed; with one thread on a free core a run takes
~25 s at 6 epochs, ~100 s at 36, ~190 s at 72)::

    OMP_NUM_THREADS=1 python bench/mask_cls_ablation.py --epochs 36 \
        --seeds 0 1 2                                     # the main table
    OMP_NUM_THREADS=1 python bench/mask_cls_ablation.py --epochs 6 \
        --seeds 0 1 2 --no-docs --out-dir bench/results/mask_cls_ablation_6ep
    # ... and --epochs 72 into bench/results/mask_cls_ablation_72ep

Each results file says whether the head/sampler ranking by joint macro-F1
was the same in every seed (:func:`ranking`).
"""
import argparse
import os
import os.path as osp
import platform
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import check_seeds, fmt_pm, mean_std, write_results  # noqa

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
#: ``--suite steps``: the boostcamp teams' steps, each row adding one to the
#: row above (head, step, config, index of the Resize in the pipelines)
STEPS = (
    ('MaskLabelHead (3+2+3)', 'baseline',
     'configs/mask_cls/mask_label_head_mnv3_demo.py'),
    ('MaskLabelHead (3+2+3)', '+ mask-conditioned age',
     'configs/mask_cls/mask_label_head_age_by_mask_mnv3_demo.py'),
    ('MaskLabelHead (3+2+3)', '+ face crop',
     'configs/mask_cls/mask_label_head_age_by_mask_facecrop_mnv3_demo.py'),
    ('MaskLabelHead (3+2+3)', '+ label fixes',
     'configs/mask_cls/'
     'mask_label_head_age_by_mask_facecrop_labelfix_mnv3_demo.py'),
    ('MaskLabelHead (3+2+3)', '+ CutMix',
     'configs/mask_cls/'
     'mask_label_head_age_by_mask_facecrop_labelfix_cutmix_mnv3_demo.py'),
)
SUITES = dict(heads=RUNS, steps=STEPS)
#: data of the steps suite: faces MTCNN finds (smaller than the frame) and
#: persons recorded with swapped mask files, corrected by label_fixes.csv
#: (mask fixes are per image, so the person folds do not change with them)
STEPS_DATA = dict(faces='detectable', face_scale=0.7, mislabel_persons=30,
                  mislabel_kinds=('mask', ))
KEYS = ('joint_f1', 'joint_acc', 'mask_f1', 'gender_f1', 'age_f1')
MARK = '<!-- mask_cls_ablation -->'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=osp.join(ROOT, 'data', 'mask_bench'),
                   help='demo data folder (generated when missing)')
    p.add_argument('--persons', type=int, default=300)
    p.add_argument('--epochs', type=int, default=36,
                   help='training epochs of every run (the main table: 36)')
    p.add_argument('--img-size', type=int, default=32,
                   help='training/validation resize (the configs use 64; '
                   '32 keeps the four runs within minutes on 2 cores)')
    p.add_argument('--seeds', type=int, nargs='*', default=[0],
                   help='training seeds, one run of every head/sampler each'
                   ' (e.g. --seeds 0 1 2); the table gives mean ± std')
    p.add_argument('--seed', type=int, default=None,
                   help='one seed (same as --seeds N)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'mask_cls_ablation'))
    p.add_argument('--out-dir', default=osp.join(ROOT, 'bench', 'results'))
    p.add_argument('--no-docs', action='store_true',
                   help='do not update docs/classification.md')
    p.add_argument('--suite', choices=sorted(SUITES), default='heads',
                   help='heads: 18-way vs MaskLabelHead x sampler (the main '
                   'table); steps: the teams\' steps added one by one '
                   '(mask-conditioned age, face crop, label fixes, CutMix) '
                   'on --data (default data/mask_bench_steps, generated '
                   'with STEPS_DATA)')
    args = p.parse_args(argv)
    if args.suite == 'steps' and args.data == osp.join(ROOT, 'data',
                                                       'mask_bench'):
        args.data = osp.join(ROOT, 'data', 'mask_bench_steps')
    args.seeds = check_seeds(
        [args.seed] if args.seed is not None else args.seeds,
        'mask_cls_ablation')
    return args


def run_dir(work_dir, seed, config):
    """Work dir of one run: ``<work_dir>/seed<S>/<config name>``."""
    return osp.join(work_dir, f'seed{seed}',
                    osp.splitext(osp.basename(config))[0])


def rows_of(runs):
    """The row table (``RUNS`` or ``STEPS``) the runs were made with."""
    configs = {r['config'] for r in runs}
    return STEPS if configs and configs <= {c for _, _, c in STEPS} and \
        not configs <= {c for _, _, c in RUNS} else RUNS


def summarise(runs):
    """Per (head, sampler), in ``RUNS`` (or ``STEPS``) order: the seeds
    and, for every metric of ``KEYS``, :func:`mean_std` of its per-seed
    values (seed order). Runs without a ``seed`` key count as seed 0."""
    out = []
    for head, sampler, config in rows_of(runs):
        rows = sorted((r for r in runs
                       if (r['head'], r['sampler']) == (head, sampler)),
                      key=lambda r: r.get('seed', 0))
        if not rows:
            continue
        out.append(dict(
            head=head, sampler=sampler, config=config,
            seeds=[r.get('seed', 0) for r in rows],
            metrics={k: mean_std([r['metrics'][k] for r in rows])
                     for k in KEYS},
            wall_s=mean_std([r['wall_s'] for r in rows])))
    return out


def label(head, sampler):
    """Short name of a head/sampler row, e.g. ``MaskLabelHead +
    ClassBalancedSampler``; a ``STEPS`` row is its step."""
    if sampler == 'baseline' or sampler.startswith('+ '):
        return sampler
    return f"{head.split(' ')[0]} + {sampler}"


def ranking(runs, key='joint_f1'):
    """Whether the head/sampler ranking by ``key`` is the same in every seed.

    Returns ``per_seed`` (seed -> labels, best first), ``by_mean`` (labels by
    mean over seeds, best first), ``stable`` (True when every seed gives the
    same order; ties count as different orders unless equal in every seed),
    and ``pairs``: for every two rows, how many seeds each won
    (``[a, b, wins_a, wins_b]``) -- a pair is *consistent* when one of them
    won in every seed."""
    seeds = sorted({r.get('seed', 0) for r in runs})
    names = [label(h, s) for h, s, _ in rows_of(runs)
             if any((r['head'], r['sampler']) == (h, s) for r in runs)]
    value = {(label(r['head'], r['sampler']), r.get('seed', 0)):
             r['metrics'][key] for r in runs}
    missing = [(n, s) for n in names for s in seeds if (n, s) not in value]
    if missing:
        raise ValueError(f'ranking: no run for {missing[0][0]!r} with seed '
                         f'{missing[0][1]}; every row needs every seed')
    per_seed = {s: sorted(names, key=lambda n: -value[n, s]) for s in seeds}
    orders = {tuple(o) for o in per_seed.values()}
    means = {n: sum(value[n, s] for s in seeds) / len(seeds) for n in names}
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            wa = sum(value[a, s] > value[b, s] for s in seeds)
            wb = sum(value[b, s] > value[a, s] for s in seeds)
            pairs.append([a, b, wa, wb])
    return dict(key=key, seeds=seeds, per_seed=per_seed,
                by_mean=sorted(names, key=lambda n: -means[n]),
                stable=len(orders) == 1, pairs=pairs)


def ranking_markdown(rank):
    """One plain sentence: the ranking is stable across the seeds, or it is
    not (with the per-seed orders and the pairs that do hold)."""
    n = len(rank['seeds'])
    if n < 2:
        return ('Ranking: one seed, so nothing can be said about its '
                'stability; run `--seeds 0 1 2`.')
    if rank['stable']:
        return (f'Ranking by joint macro-F1 is **the same in all {n} '
                'seeds**: ' + ' > '.join(rank['by_mean']) + '.')
    orders = '; '.join(f'seed {s}: ' + ' > '.join(o)
                       for s, o in rank['per_seed'].items())
    held = [f'{a} > {b}' if wa == n else f'{b} > {a}'
            for a, b, wa, wb in rank['pairs'] if n in (wa, wb)]
    return (f'Ranking by joint macro-F1 is **not stable across the {n} '
            f'seeds** ({orders}). '
            + ('Only these pairs keep their order in every seed: '
               + '; '.join(held) + '.' if held else
               'No pair keeps its order in every seed.'))


def resize_index(config):
    """Index of the ``Resize`` in the config's train pipeline."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    return types.index('Resize')


def train(config, data, epochs, seed, work_dir, img_size, extra=()):
    opts = [
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        f'param_scheduler.1.T_max={epochs}', f'randomness.seed={seed}',
        'default_hooks.logger.interval=50',
        # no checkpoint files: only the final validation matters here
        'default_hooks.checkpoint.interval=-1',
        'default_hooks.checkpoint.save_best=None',
        'default_hooks.checkpoint.save_last=False'
    ]
    ri = resize_index(config)
    for loader in ('train_dataloader', 'val_dataloader'):
        opts += [f'{loader}.dataset.data_root={data}',
                 f'{loader}.dataset.pipeline.{ri}.scale=({img_size},'
                 f'{img_size})',
                 f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
           '--cfg-options'] + opts + list(extra)
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f'{config} failed:\n{proc.stderr[-3000:]}')
    from mmplugins.utils.run_logs import last_row, read_scalars
    val = last_row(read_scalars(work_dir, newest_only=True),
                   'mask/joint_f1', source=work_dir)
    return {k: round(val[f'mask/{k}'], 2) for k in KEYS}, wall


def face_crop_counts(data, cache_dir):
    """Run the steps configs' ``FaceCrop`` once over every image of
    ``data`` (filling the cache the runs read) and return its counts."""
    import cv2
    from mmengine.config import Config
    from mmplugins.datasets.mask_dataset import scan_mask_images
    from mmplugins.datasets.transforms.face_crop import FaceCrop
    cfg = Config.fromfile(osp.join(ROOT, STEPS[2][2]))
    kw = dict(cfg.face_crop)
    kw.pop('type')
    kw['cache_dir'] = cache_dir
    t = FaceCrop(**kw)
    for info in scan_mask_images(osp.join(data, 'images')):
        t(dict(img=cv2.imread(info['img_path']), img_path=info['img_path']))
    return dict(images=t.stats['images'], faces=t.stats['faces'],
                fallbacks=t.stats['fallbacks'])


def to_markdown(result):
    steps = result.get('setup', {}).get('suite') == 'steps' or \
        rows_of(result.get('runs', [])) is STEPS
    lines = [
        ('| head | step |' if steps else '| head | sampler |')
        + ' joint macro-F1 | per seed | joint acc | mask F1 | gender F1 | '
        'age F1 | train+val wall (s) |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for r in result['summary']:
        m = r['metrics']
        lines.append(
            f"| {r['head']} | {r['sampler']} | {fmt_pm(m['joint_f1'])} | "
            + ' / '.join(f'{v:.2f}' for v in m['joint_f1']['values'])
            + f" | {fmt_pm(m['joint_acc'])} | {fmt_pm(m['mask_f1'])} | "
            f"{fmt_pm(m['gender_f1'])} | {fmt_pm(m['age_f1'])} | "
            f"{r['wall_s']['mean']:.0f} |")
    if 'ranking' in result:
        lines += ['', ranking_markdown(result['ranking'])]
    s = result['setup']
    lines += [
        '',
        f"Demo data: {s['persons']} persons x 7 images (generated at 64 px, "
        f"trained and validated at {s['img_size']} px, seed "
        f"{s['data_seed']}), person-wise fold 0 of 5 "
        f"({s['train_images']} train / {s['val_images']} val images); "
        f"timm `mobilenetv3_small_050` from scratch, AdamW, {s['epochs']} "
        f"epochs, batch 32, training seeds {s['seeds']} (mean ± sample "
        "std over seeds; per-seed joint macro-F1 in seed order). "
        + (f"Steps data: `make_mask_demo(**{s['steps_data']})`; every row "
           "is validated with the label fixes applied (the true labels), "
           "rows before '+ label fixes' train on the recorded ones. "
           + (f"FaceCrop over the {s['face_crop']['images']} images: "
              f"{s['face_crop']['faces']} faces, "
              f"{s['face_crop']['fallbacks']} centre-crop fallbacks. "
              if s.get('face_crop') else '')
           if s.get('suite') == 'steps' else '')
        + f"Machine: {s['machine']}.",
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


def main(argv=None):
    args = parse_args(argv)
    from mmplugins.datasets.demo.mask_demo import make_mask_demo
    steps = args.suite == 'steps'
    if not osp.isdir(osp.join(args.data, 'images')):
        make_mask_demo(args.data, num_persons=args.persons, eval_persons=0,
                       size=64, seed=0, **(STEPS_DATA if steps else {}))
    from mmplugins.datasets.mask_dataset import MaskDataset
    n_train = len(MaskDataset(data_root=args.data, split='train'))
    n_val = len(MaskDataset(data_root=args.data, split='val'))
    extra, setup_extra = (), {}
    if steps:
        fixes = osp.join(args.data, 'label_fixes.csv')
        val_fixed = {i['person_id'] for i in (MaskDataset(
            data_root=args.data, split='val', label_fixes=fixes)).data_list}
        val_plain = {i['person_id'] for i in (MaskDataset(
            data_root=args.data, split='val')).data_list}
        if val_fixed != val_plain:
            raise RuntimeError('the label fixes change the folds: rows '
                               'would not share their validation persons')
        cache = osp.join(args.work_dir, 'face_crop_cache')
        extra = [f'val_dataloader.dataset.label_fixes={fixes}']
        setup_extra = dict(suite='steps', steps_data=STEPS_DATA,
                           face_crop=face_crop_counts(args.data, cache))
    runs = []
    for seed in args.seeds:
        for head, sampler, config in SUITES[args.suite]:
            opts = list(extra)
            if 'labelfix' in config:
                opts.append(f'train_dataloader.dataset.label_fixes={fixes}')
            if 'facecrop' in config:
                opts += [f'{loader}.dataset.pipeline.1.cache_dir={cache}'
                         for loader in ('train_dataloader',
                                        'val_dataloader')]
            metrics, wall = train(config, args.data, args.epochs, seed,
                                  run_dir(args.work_dir, seed, config),
                                  args.img_size, opts)
            runs.append(dict(head=head, sampler=sampler, config=config,
                             seed=seed, metrics=metrics,
                             wall_s=round(wall, 1)))
            print(f'seed {seed} {head:24s} {sampler:22s} joint F1 '
                  f'{metrics["joint_f1"]:6.2f}  age F1 '
                  f'{metrics["age_f1"]:6.2f}  ({wall:.0f} s)', flush=True)
    result = dict(
        setup=dict(
            persons=args.persons, data_seed=0, seeds=args.seeds,
            epochs=args.epochs, train_images=n_train, val_images=n_val,
            img_size=args.img_size, **setup_extra,
            machine=f'{platform.machine()} CPU, {os.cpu_count()} cores '
            '(shared with other jobs: wall times are indicative)',
            omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
            command=f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
            'python bench/mask_cls_ablation.py'
            + ''.join(f' {a}' for a in (sys.argv[1:] if argv is None
                                        else argv))),
        runs=runs, summary=summarise(runs), ranking=ranking(runs))
    md = to_markdown(result)
    write_results('mask_cls_ablation', result,
                  ['# Mask classification ablation', '', md.rstrip('\n')],
                  args.out_dir)
    if not args.no_docs and args.suite == 'heads':
        update_docs(md)  # the steps table goes in through bench/report.py


if __name__ == '__main__':
    main()
