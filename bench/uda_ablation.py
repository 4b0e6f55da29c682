"""Target-domain mIoU of source-only vs +dual-branch vs +MIC vs the full
config, same model, schedule and seed (issue: "Must be shown").

    python bench/uda_ablation.py                       # defaults below
    python bench/uda_ablation.py --iters 300 --variants source_only full
    python bench/uda_ablation.py --seeds 0 1 2         # mean +- std
    python bench/uda_ablation.py --warm-start 300      # from a warm start

``--warm-start N``: every variant of a seed starts from the same source-only
checkpoint of N iterations (the stand-in for the ImageNet weights every real
run starts from; see mmplugins/utils/warm_start.py), trained once per seed by
this script and cached by its resolved config's hash; without it every
variant trains from scratch, where the teacher is never confident
(final ``pseudo_weight`` ~0.06 in 400 iterations) and the self-training terms
contribute little. The table reports each run's final logged
``pseudo_weight`` and says what it is: the mean over the log processor's
window when the config's ``log_processor.mean_pattern`` matches the key
(``pseudo_weight_window`` in the JSON), else the last iteration's value.

Each variant is one ``tools/train.py configs/mic_dual_aug.py`` run with
``--cfg-options`` toggles (so the table really is "one line per ablation"),
evaluated on the labelled *target* val split of the demo data at the end.
Writes ``bench/results/uda_ablation.{json,md}``. Runs unchanged on CPU and
CUDA (the Runner picks the device).
"""
import argparse
import os.path as osp
import statistics
import subprocess
import sys
import time

from _common import ROOT, machine_info, md_table, write_results
from _common import check_seeds as _check_seeds

sys.path.insert(0, ROOT)
from mmplugins.utils.run_logs import (mean_window,  # noqa: E402
                                      pseudo_weight_label)
from mmplugins.utils.warm_start import (SOURCE_ONLY_OPTIONS,  # noqa: E402
                                        cached_warm_start, config_hash,
                                        student_init_options,
                                        write_warm_start_stamp)

OFF = list(SOURCE_ONLY_OPTIONS)
VARIANTS = {
    'source_only': OFF,
    'dual_branch': ['model.mix=None', 'model.mask_lambda=0',
                    'train_dataloader.dataset.rare_class_sampling=None'],
    'mic': ['model.dual_branch_lambda=0'],  # DACS + RCS + MIC
    'full': [],  # configs/mic_dual_aug.py as shipped
}


def schedule_options(iters: int, warmup: int) -> list:
    """--cfg-options scaling the config's schedule (param_scheduler =
    [LinearLR, PolyLR], both from 0 and multiplied, as mmcv's poly policy
    with linear warm-up) to a run of ``iters`` with ``warmup`` warm-up
    iterations. mmengine's ``end`` is one past the step at which a scheduler
    reaches its final factor, hence the +1 (see
    configs/_base_/schedules/schedule_2k.py)."""
    return [
        f'param_scheduler.0.end={warmup + 1}',
        'param_scheduler.1.begin=0',
        f'param_scheduler.1.end={iters + 1}',
    ]


def _cuda():
    import torch
    return torch.cuda.is_available()


def final_metrics(work_dir):
    """The last validation row (all run dirs: a resumed run continues)."""
    from mmplugins.utils.run_logs import last_row, read_scalars
    return last_row(read_scalars(work_dir), 'mIoU', source=work_dir)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default='configs/mic_dual_aug.py')
    p.add_argument('--data', default='data/samsung_demo',
                   help="made here if missing; must be the config's data_root")
    p.add_argument('--iters', type=int, default=400)
    p.add_argument('--lr', type=float, default=6e-4,
                   help="optim_wrapper.optimizer.lr (the config's 6e-5 is "
                   "SegFormer's fine-tuning lr for ImageNet weights; the demo "
                   'trains from scratch)')
    p.add_argument('--warmup', type=int, default=None,
                   help='linear warm-up iterations (default: iters/8); the '
                   "config's poly decay is rescaled to end at --iters")
    p.add_argument('--cfg-options', nargs='*', default=[],
                   help='extra key=value overrides for every variant')
    p.add_argument('--seeds', type=int, nargs='+', default=[0],
                   help='one run of every variant per seed; the table gives '
                   'per-seed rows and mean +- std (e.g. --seeds 0 1 2)')
    p.add_argument('--seed', type=int, default=None,
                   help='one seed (same as --seeds N)')
    p.add_argument('--warm-start', type=int, default=0, metavar='N',
                   help='start every variant from a source-only run of N '
                   'iterations (per seed, cached); 0: from scratch')
    p.add_argument('--warm-lr', type=float, default=6e-4,
                   help='lr of the warm start (from scratch); --lr is the '
                   "variants' (give the config's 6e-5 after a warm start, "
                   'as make demo does)')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--variants', nargs='+', default=list(VARIANTS),
                   choices=list(VARIANTS))
    p.add_argument('--work-dir', default='work_dirs/uda_ablation')
    p.add_argument('--out-dir', default=None)
    args = p.parse_args(argv)
    seeds = check_seeds([args.seed] if args.seed is not None else args.seeds)
    if args.warm_start < 0:
        raise SystemExit('uda_ablation: --warm-start must be >= 0 '
                         f'iterations, got {args.warm_start}')
    if not osp.isfile(osp.join(ROOT, args.data, 'train_source.csv')):
        subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out',
                        args.data], cwd=ROOT, check=True)
    warmup = args.warmup if args.warmup is not None else args.iters // 8
    common = [
        f'train_cfg.max_iters={args.iters}',
        f'train_cfg.val_interval={args.iters}',
        f'default_hooks.checkpoint.interval={args.iters}',
        'default_hooks.logger.interval=50', 'model.vis_interval=0',
        f'train_dataloader.num_workers={args.workers}',
    ] + schedule_options(args.iters, warmup) + list(args.cfg_options)
    if args.lr is not None:
        common.append(f'optim_wrapper.optimizer.lr={args.lr}')
    runs = []
    warm_runs = {}
    for seed in seeds:
        init = []
        if args.warm_start:
            warm_runs[seed] = warm_start(args, seed, workers=args.workers)
            init = student_init_options(warm_runs[seed]['checkpoint'])
        for name in args.variants:
            # seeds never share (or overwrite) a work dir
            wd = osp.join(args.work_dir, f'seed{seed}', name)
            cmd = [sys.executable, 'tools/train.py', args.config,
                   '--work-dir', wd, '--cfg-options', *common,
                   f'randomness.seed={seed}', *VARIANTS[name], *init]
            print('$', ' '.join(cmd[1:]), flush=True)
            t0 = time.time()
            subprocess.run(cmd, cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
            m = final_metrics(osp.join(ROOT, wd))
            runs.append(dict(variant=name, seed=seed, mIoU=m['mIoU'],
                             aAcc=m.get('aAcc'), mAcc=m.get('mAcc'),
                             pseudo_weight=final_scalar(
                                 osp.join(ROOT, wd), 'pseudo_weight'),
                             pseudo_weight_window=mean_window(
                                 osp.join(ROOT, wd,
                                          osp.basename(args.config)),
                                 'pseudo_weight'),
                             train_s=round(time.time() - t0, 1)))
            print(runs[-1], flush=True)
    summary = summarise(runs)
    windows = {r['pseudo_weight_window'] for r in runs}
    if len(windows) != 1:
        raise SystemExit('uda_ablation: the runs log pseudo_weight over '
                         f'different windows {sorted(windows)}')
    window, = windows
    info = machine_info('cuda' if _cuda() else 'cpu')
    cmd = ' '.join(['python bench/uda_ablation.py'] + list(
        sys.argv[1:] if argv is None else argv))
    start = (f'from a source-only warm start of {args.warm_start} '
             'iterations (one per seed, shared by every variant; its own '
             'target mIoU: ' + ', '.join(
                 f'{warm_runs[s]["mIoU"]:.2f}' for s in seeds) + ')'
             if args.warm_start else 'from scratch')
    md = ['# UDA ablation on the demo pinhole -> fisheye shift', '',
          f'Target-domain (fisheye val, 50 images) mIoU after {args.iters} '
          f'iterations {start}, seeds {seeds}, lr {args.lr:g}, same '
          f'model and schedule for every variant; {info.get("device", "")}.',
          ''] + md_table(
              ['variant', 'target mIoU (mean ± std)', 'vs source-only',
               'per seed', 'final ' + pseudo_weight_label(window),
               'train s', 'cfg-options'],
              [[n, pm(r['mIoU']), pm(r['delta'], signed=True)
                if r['delta'] else '', ' / '.join(f'{v:.2f}'
                                                  for v in r['mIoU']),
                pm(r['pseudo_weight'], digits=3) if r['pseudo_weight']
                else '', round(statistics.mean(r['train_s']), 1),
                ' '.join(VARIANTS[n]) or '(as shipped)']
               for n, r in summary.items()]) + ['', f'`{cmd}`']
    write_results('uda_ablation', dict(
        iters=args.iters, lr=args.lr, seeds=seeds, command=cmd,
        warm_start=dict(iters=args.warm_start, lr=args.warm_lr, runs={
            str(s): dict(mIoU=w['mIoU'], hash=w['hash'],
                         checkpoint=osp.relpath(w['checkpoint'], ROOT))
            for s, w in warm_runs.items()}) if args.warm_start else None,
        machine=info, common_cfg_options=common, runs=runs,
        pseudo_weight_window=window,
        summary=summary,
        variants={n: VARIANTS[n] for n in args.variants}), md, args.out_dir)


def warm_start(args, seed, workers=2):
    """The source-only warm start of ``seed`` (trained once, then reused
    while its resolved config is unchanged): the stamp dict with
    ``checkpoint`` and ``mIoU``."""
    iters = args.warm_start
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            'default_hooks.logger.interval=50', 'model.vis_interval=0',
            f'train_dataloader.num_workers={workers}',
            f'randomness.seed={seed}',
            f'optim_wrapper.optimizer.lr={args.warm_lr}'] + schedule_options(
                iters, max(1, iters // 8)) + list(args.cfg_options) + OFF
    wd = osp.join(ROOT, args.work_dir, f'seed{seed}', 'warm_start')
    key = config_hash(osp.join(ROOT, args.config), opts)
    cached = cached_warm_start(wd, key)
    if cached is not None:
        print(f'warm start of seed {seed}: reusing {wd}', flush=True)
        return cached
    cmd = [sys.executable, 'tools/train.py', args.config, '--work-dir', wd,
           '--cfg-options', *opts]
    print('$', ' '.join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    ckpt = osp.join(wd, f'iter_{iters}.pth')
    return write_warm_start_stamp(wd, key, ckpt,
                                  mIoU=final_metrics(wd)['mIoU'])


def check_seeds(seeds):
    """--seeds: at least one, none repeated (bench/_common.check_seeds)."""
    return _check_seeds(seeds, 'uda_ablation')


def final_scalar(work_dir, key):
    """The last logged value of ``key`` in the run's scalars, or None."""
    from mmplugins.utils.run_logs import last_value, read_scalars
    return last_value(read_scalars(work_dir), key, default=None)


def summarise(runs):
    """Per variant: the per-seed values (in seed order), their mean and
    std, and the per-seed difference to source-only of the same seed."""
    base = {r['seed']: r['mIoU'] for r in runs
            if r['variant'] == 'source_only'}
    out = {}
    for name in VARIANTS:
        rows = sorted((r for r in runs if r['variant'] == name),
                      key=lambda r: r['seed'])
        if not rows:
            continue
        out[name] = dict(
            seeds=[r['seed'] for r in rows],
            mIoU=[r['mIoU'] for r in rows],
            delta=[r['mIoU'] - base[r['seed']] for r in rows
                   if r['seed'] in base] if name != 'source_only' else [],
            pseudo_weight=[r['pseudo_weight'] for r in rows
                           if r['pseudo_weight'] is not None],
            train_s=[r['train_s'] for r in rows])
        for k in ('mIoU', 'delta', 'pseudo_weight'):
            v = out[name][k]
            out[name][f'{k}_mean'] = statistics.mean(v) if v else None
            out[name][f'{k}_std'] = statistics.stdev(v) if len(v) > 1 \
                else None
    return out


def pm(values, signed=False, digits=2):
    """'mean ± std' (sample std) of ``values``; just the value for one."""
    fmt = f'{{:{"+" if signed else ""}.{digits}f}}'
    mean = fmt.format(statistics.mean(values))
    if len(values) < 2:
        return mean
    return f'{mean} ± {statistics.stdev(values):.{digits}f}'


if __name__ == '__main__':
    main()
