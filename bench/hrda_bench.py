"""MIC vs MIC(HRDA) on the demo, and the HRDA step vs the sum of its passes.

Two parts (issue: "Must be shown"):

* ``--part step``: one MIC(HRDA) + dual-branch ``train_step`` of
  ``configs/mic_hrda.py`` vs its passes timed alone with the same student
  and teacher (interleaved medians): the teacher's fused inference on the
  target (context + overlapping detail crops, batched), and for the source,
  the distortion view, a mixed and a masked image the student's training
  forward (context + a random detail crop) + the HRDA losses + backward.
  Figure: ``step / sum(passes)`` (goal <= 1.10).
* ``--part miou``: ``tools/train.py`` runs of ``configs/mic_dual_aug.py``
  (MIC + dual branch, 128x256 crops) and ``configs/mic_hrda.py`` (the same
  with the HRDA student on 256x512 crops: the 128x256 context + 128x128
  detail crops) with the same seeds, iterations, schedule and lr as
  ``bench/uda_ablation.py``: target (fisheye val) mIoU, the IoU of the small
  classes (Traffic Light, Traffic Sign, Person, Rider), seconds per
  iteration and the peak RSS of the training process.

    python bench/hrda_bench.py --part step --quick
    python bench/hrda_bench.py --part miou --iters 400 --seeds 0 1 2
    python bench/hrda_bench.py --part miou --reuse-mic \
        work_dirs/uda_ablation_ref          # MIC side from the ablation
    python bench/hrda_bench.py --part cost --iters 60 --rounds 2

* ``--part cost``: seconds per iteration and peak RSS of the two training
  runs of ``--part miou`` measured in ONE invocation, the runs alternating
  (MIC, MIC(HRDA), MIC, ...) so both see the same machine load; the first
  logged window of each run (start-up, first-iteration allocations) is left
  out of s/iter, and no validation runs. Figure: MIC(HRDA) / MIC s/iter
  and peak RSS.

Writes ``bench/results/hrda_{step,miou,cost}.{json,md}``.
"""
import argparse
import os.path as osp
import re
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import (ROOT, interleaved_medians, machine_info,  # noqa: E402
                     md_table, resolve_device, set_threads, write_results)

HRDA_CONFIG = osp.join(ROOT, 'configs', 'mic_hrda.py')
MIC_CONFIG = osp.join(ROOT, 'configs', 'mic_dual_aug.py')
GOAL_RATIO = 1.10
SMALL_CLASSES = ('Traffic Light', 'Traffic Sign', 'Person', 'Rider')
VARIANTS = {'mic': 'configs/mic_dual_aug.py',
            'mic_hrda': 'configs/mic_hrda.py'}


# ------------------------------------------------------------------ step
def hrda_pass_fns(model, batch):
    """The constituent passes of an MIC(HRDA) step, each timed alone."""
    import uda_step_bench as usb
    x = usb.pass_inputs(model, batch, 'cpu', model.mask_block_size)
    tgt = x['tgt']
    student, teacher = model.student, model.teacher

    def student_pass(img, label, wgt=None):
        def fn():
            student.zero_grad(set_to_none=True)
            out = student(img, None, mode='train_logits')
            losses = model._seg_loss(out, label, wgt, 'p')
            losses['p.loss'].backward()
        return fn

    def teacher_pass():
        with torch.no_grad():
            teacher(tgt, None, mode='tensor')

    return {
        'teacher fused fwd (target, detail slide)': teacher_pass,
        'student fwd+bwd (source)': student_pass(x['src'], x['src_gt']),
        'student fwd+bwd (distortion view)': student_pass(x['dist'],
                                                          x['dist_gt']),
        'student fwd+bwd (mixed)': student_pass(x['mixed'], x['pseudo'],
                                                x['weight']),
        'student fwd+bwd (masked)': student_pass(x['masked'], x['pseudo'],
                                                 x['weight']),
    }


def run_step(args):
    import uda_step_bench as usb
    model, ow, crop = usb.build('b0', None, None, 'cpu', False,
                                config=HRDA_CONFIG)
    batch = usb.uda_batch(args.batch_size, *crop)
    fns = dict(hrda_pass_fns(model, batch))
    fns['step'] = lambda: model.train_step(batch, ow)
    med = interleaved_medians(fns, args.reps, args.warmup)
    passes = [k for k in fns if k != 'step']
    total = sum(med[k]['median_s'] for k in passes)
    ratio = med['step']['median_s'] / total
    rows = [[k, round(med[k]['median_s'], 3)] for k in passes] + [
        ['sum of passes', round(total, 3)],
        ['train_step', round(med['step']['median_s'], 3)],
        ['step / sum of passes', f'{ratio:.3f}x (goal <= {GOAL_RATIO}x)']]
    info = machine_info('cpu')
    md = ['# MIC(HRDA) step vs its passes', '',
          f'configs/mic_hrda.py (MiT-B0, {crop[0]}x{crop[1]} crops, '
          f'detail {model.student.hr_crop_size}), batch {args.batch_size}, '
          f'median of {args.reps} interleaved repetitions, '
          f'{info.get("device", "")}, {info.get("torch_threads")} threads.',
          ''] + md_table(['what', 's'], rows)
    write_results('hrda_step', dict(
        crop=list(crop), batch_size=args.batch_size, reps=args.reps,
        medians={k: v['median_s'] for k, v in med.items()},
        ratio=ratio, goal=GOAL_RATIO, machine=info), md, args.out_dir)
    return ratio


# ------------------------------------------------------------------ mIoU
_ROW = re.compile(r'^\|\s*([^|]+?)\s*\|\s*([\d.]+|nan)\s*\|\s*([\d.]+|nan)'
                  r'\s*\|\s*$')


def class_iou(work_dir):
    """{class: IoU} from the last per-class table mmseg's IoUMetric
    printed into the run's log."""
    logs = sorted(p for p in _glob(work_dir, '*.log'))
    table = {}
    for path in logs:
        for line in open(path):
            m = _ROW.match(line.strip())
            if m and m.group(1) not in ('Class', ):
                table[m.group(1)] = float(m.group(2))
    return table


def _glob(work_dir, pattern):
    import glob
    return glob.glob(osp.join(work_dir, '*', pattern))


def mean_iter_time(work_dir):
    """Mean logged training ``time`` over all run dirs (None without)."""
    from mmplugins.utils.run_logs import read_scalars, train_rows
    times = [r['time'] for r in train_rows(read_scalars(work_dir))]
    return statistics.mean(times) if times else None


def run_record(name, seed, work_dir, **extra):
    """One run's figures read back from its work dir (``extra`` overrides
    or adds fields)."""
    import uda_ablation as ua
    ious = class_iou(work_dir)
    rec = dict(variant=name, seed=seed,
               mIoU=ua.final_metrics(work_dir)['mIoU'],
               small_class_iou={c: ious.get(c) for c in SMALL_CLASSES},
               s_per_iter=mean_iter_time(work_dir), peak_rss_mb=None,
               train_s=None)
    rec.update(extra)
    return rec


# the wrapper reports the peak RSS of its largest child (the trainer)
_RSS_WRAP = ('import resource, subprocess, sys; '
             'r = subprocess.run(sys.argv[1:]).returncode; '
             'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); '
             'sys.exit(r)')


def train_with_peak_rss(config, work_dir, options):
    """``tools/train.py config`` in a child; returns (peak RSS MB of the
    trainer, wall s)."""
    cmd = [sys.executable, '-c', _RSS_WRAP, sys.executable,
           'tools/train.py', config, '--work-dir', work_dir,
           '--cfg-options', *options]
    print('$', ' '.join(cmd[4:]), flush=True)
    t0 = time.time()
    out = subprocess.run(cmd, cwd=ROOT, check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    return (int(out.strip().splitlines()[-1]) / 1024,
            round(time.time() - t0, 1))


def iter_times(work_dir, skip_first=1):
    """The logged train ``time`` of each logging window (newest run dir),
    without the first ``skip_first`` windows."""
    from mmplugins.utils.run_logs import read_scalars, train_rows
    rows = train_rows(read_scalars(work_dir, newest_only=True))
    return [r['time'] for r in rows][skip_first:]


def run_cost(args):
    import uda_ablation as ua
    if args.rounds < 1 or args.iters < 20:
        raise SystemExit('hrda_bench --part cost: needs --rounds >= 1 and '
                         f'--iters >= 20, got {args.rounds}, {args.iters}')
    log_every = 10
    common = [f'train_cfg.max_iters={args.iters}',
              f'train_cfg.val_begin={args.iters + 1}',  # no validation
              f'default_hooks.checkpoint.interval={args.iters}',
              f'default_hooks.logger.interval={log_every}',
              'model.vis_interval=0',
              f'train_dataloader.num_workers={args.workers}',
              f'optim_wrapper.optimizer.lr={args.lr}', 'randomness.seed=0'
              ] + ua.schedule_options(args.iters, args.iters // 8)
    runs = []
    for rnd in range(args.rounds):
        for name, config in VARIANTS.items():
            wd = osp.join(ROOT, args.work_dir, 'cost', f'round{rnd}', name)
            peak, wall = train_with_peak_rss(config, wd, common)
            times = iter_times(wd)
            runs.append(dict(variant=name, round=rnd,
                             s_per_iter=statistics.mean(times),
                             window_times=times, peak_rss_mb=round(peak),
                             train_s=wall))
            print(runs[-1], flush=True)
    out = {}
    for name in VARIANTS:
        rs = [r for r in runs if r['variant'] == name]
        out[name] = dict(
            s_per_iter=statistics.mean(r['s_per_iter'] for r in rs),
            s_per_iter_rounds=[r['s_per_iter'] for r in rs],
            peak_rss_mb=max(r['peak_rss_mb'] for r in rs))
    ratio = dict(
        s_per_iter=out['mic_hrda']['s_per_iter'] / out['mic']['s_per_iter'],
        peak_rss=out['mic_hrda']['peak_rss_mb'] / out['mic']['peak_rss_mb'])
    md = ['# MIC vs MIC(HRDA): training cost on the demo', '',
          f'{args.rounds} alternating round(s) of {args.iters} iterations '
          'per variant in one invocation (same machine load); s/iter = mean '
          f'of the logged {log_every}-iteration windows after the first; '
          'peak RSS of the training process (data workers not counted).', ''
          ] + md_table(['variant', 's/iter', 'per round', 'peak RSS MB'], [
              [n, f'{o["s_per_iter"]:.3f}',
               ' / '.join(f'{v:.3f}' for v in o['s_per_iter_rounds']),
               o['peak_rss_mb']] for n, o in out.items()]) + [
        '', f'MIC(HRDA) / MIC: {ratio["s_per_iter"]:.2f}x s/iter, '
        f'{ratio["peak_rss"]:.2f}x peak RSS']
    cmd = 'python bench/hrda_bench.py ' + ' '.join(args.argv)
    write_results('hrda_cost', dict(
        iters=args.iters, rounds=args.rounds, workers=args.workers,
        runs=runs, variants=out, ratio=ratio, configs=VARIANTS,
        machine=machine_info('cpu'), command=cmd), md, args.out_dir)


def run_miou(args):
    import uda_ablation as ua
    seeds = ua.check_seeds(args.seeds)
    if not osp.isfile(osp.join(ROOT, args.data, 'train_source.csv')):
        subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out',
                        args.data], cwd=ROOT, check=True)
    warmup = args.iters // 8
    common = [f'train_cfg.max_iters={args.iters}',
              f'train_cfg.val_interval={args.iters}',
              f'default_hooks.checkpoint.interval={args.iters}',
              'default_hooks.logger.interval=10', 'model.vis_interval=0',
              f'train_dataloader.num_workers={args.workers}',
              f'optim_wrapper.optimizer.lr={args.lr}'
              ] + ua.schedule_options(args.iters, warmup)
    runs = []
    for seed in seeds:
        for name, config in VARIANTS.items():
            if name == 'mic' and args.reuse_mic:
                # the same run as bench/uda_ablation.py's 'full' variant
                # (same config, seed, iterations, schedule and lr); it ran
                # under other load: no speed figure from it
                full = osp.join(args.reuse_mic, f'seed{seed}', 'full')
                runs.append(run_record(name, seed, full, s_per_iter=None,
                                       reused_from=full))
                print(runs[-1], flush=True)
                continue
            wd = osp.join(args.work_dir, f'seed{seed}', name)
            if args.report_only:
                # the table from runs already in the work dir (e.g. an
                # interrupted --seeds run): no peak RSS, it was not recorded
                runs.append(run_record(name, seed, osp.join(ROOT, wd)))
                continue
            peak_mb, wall = train_with_peak_rss(
                config, wd, common + [f'randomness.seed={seed}'])
            runs.append(run_record(name, seed, osp.join(ROOT, wd),
                                   peak_rss_mb=round(peak_mb),
                                   train_s=wall))
            print(runs[-1], flush=True)
    rows = []
    for name in VARIANTS:
        rs = [r for r in runs if r['variant'] == name]
        rows.append([name, ua.pm([r['mIoU'] for r in rs])] + [
            ua.pm([r['small_class_iou'][c] or 0.0 for r in rs])
            for c in SMALL_CLASSES] + [
            ua.pm([r['s_per_iter'] for r in rs], digits=3)
            if all(r['s_per_iter'] for r in rs) else 'n/a',
            max((r['peak_rss_mb'] for r in rs
                 if r['peak_rss_mb'] is not None), default='n/a')])
    md = ['# MIC vs MIC(HRDA) on the demo', '',
          f'Target (fisheye val) after {args.iters} iterations from scratch, '
          f'seeds {seeds}, lr {args.lr:g}; mean ± std over seeds.', ''] + \
        md_table(['variant', 'mIoU'] + list(SMALL_CLASSES) +
                 ['s/iter', 'peak RSS MB'], rows)
    write_results('hrda_miou', dict(iters=args.iters, seeds=seeds,
                                    lr=args.lr, runs=runs,
                                    variants=VARIANTS), md, args.out_dir)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--part', choices=['step', 'miou', 'cost'],
                   required=True)
    p.add_argument('--rounds', type=int, default=2,
                   help='--part cost: alternating rounds per variant')
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--quick', action='store_true', help='reps 2')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--iters', type=int, default=400)
    p.add_argument('--lr', type=float, default=6e-4)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--data', default='data/samsung_demo')
    p.add_argument('--work-dir', default='work_dirs/hrda_bench')
    p.add_argument('--report-only', action='store_true',
                   help='no training: the table from the runs in --work-dir')
    p.add_argument('--reuse-mic', default=None, metavar='DIR',
                   help="take the MIC side from bench/uda_ablation.py's "
                   "'full' runs in DIR/seed<S>/full (same settings) instead "
                   'of training it again (no peak RSS then)')
    p.add_argument('--out-dir', default=None)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    set_threads(args.threads)
    resolve_device('cpu')
    if args.quick:
        args.reps = 2
    return dict(step=run_step, miou=run_miou, cost=run_cost)[args.part](args)


if __name__ == '__main__':
    main()
