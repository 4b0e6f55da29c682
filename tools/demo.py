"""The first run (``make demo``): a source-only warm start, then UDA from it.

Every real UDA run starts its student from ImageNet weights; a student
trained from scratch is never confident on the target within a few hundred
iterations, so the teacher's pseudo-labels would carry (almost) no weight and
the self-training terms would learn nothing. Without downloads, the demo's
stand-in for the ImageNet initialisation is a short source-only run of the
same model. The chain, both steps through ``tools/train.py``:

1. **warm start**: ``CONFIG`` with every UDA term off (as
   ``bench/uda_ablation.py``'s ``source_only`` variant) for ``--warm-iters``
   iterations, validated on the target val split. The run is cached by a
   hash of its resolved config: a second ``make demo`` reuses it.
2. **UDA**: ``CONFIG`` as shipped for ``--iters`` iterations, the student
   initialised from the warm start the way the real recipes initialise the
   backbone from ImageNet weights
   (``model.segmentor.init_cfg=dict(type='Pretrained', prefix='student.')``;
   the teacher is the copy of the student at iteration 0, as in the
   reference). Not ``load_from``: that would also carry the warm run's
   iteration counter and EMA teacher into the UDA run.

It ends with::

    target mIoU: source-only <x> -> MIC+dual <y>
    work dir: ...
    panel: .../demo_panel.png   (target | teacher pseudo-label | student | GT)

``<x>`` is the warm start (the UDA run's starting point) and ``<y>`` the UDA
student after ``--iters`` more iterations, both on the labelled fisheye
(target) val split. The schedule is that of ``bench/uda_ablation.py``: lr
6e-4 (from scratch; the config's 6e-5 is SegFormer's fine-tuning lr), linear
warm-up over 1/8 of each run and poly decay to 0 at its end.

Example::

    python tools/demo.py                                   # make demo
    python tools/demo.py --warm-iters 2 --iters 2 --work-dir /tmp/d  # smoke
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

SUMMARY_PREFIX = 'target mIoU: source-only '
PANEL_COLUMNS = ('target image', 'teacher pseudo-label', 'student',
                 'ground truth')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='make demo: source-only warm start, then UDA from it')
    p.add_argument('--config', default='configs/mic_dual_aug.py')
    p.add_argument('--warm-iters', type=int, default=600,
                   help='source-only warm-start iterations (default: 600)')
    p.add_argument('--iters', type=int, default=150,
                   help='UDA iterations after the warm start (default: 150)')
    p.add_argument('--lr', type=float, default=6e-4,
                   help='lr of the warm start (from scratch; default 6e-4)')
    p.add_argument('--uda-lr', type=float, default=None,
                   help="lr of the UDA run (default: the config's, 6e-5 "
                   'with x10 on the head: the real recipe on pretrained '
                   'weights)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--workers', type=int, default=2,
                   help='train_dataloader.num_workers (0: in the main '
                   'process)')
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--num-vis', type=int, default=4,
                   help='target val images in the PNG panel')
    p.add_argument('--log-interval', type=int, default=10)
    p.add_argument('--cfg-options', nargs='*', default=[],
                   help='extra key=value overrides for both runs')
    p.add_argument('--verbose', action='store_true',
                   help="the trainings' whole console output (default: "
                   'progress lines and results; the rest is in each log)')
    p.add_argument('--control', action='store_true',
                   help='also train the source-only model for the same '
                   '--iters from the warm start (is the gain UDA or just '
                   'more iterations?); not part of the timed demo')
    p.add_argument('--results-out', default=None, metavar='DIR',
                   help='also write DIR/demo.{json,md} (figures, times and '
                   'provenance, as the bench/ scripts write them)')
    args = p.parse_args(argv)
    if args.workers < 0:
        p.error(f'--workers must be >= 0, got {args.workers}')
    for key in ('warm_iters', 'iters', 'num_vis', 'log_interval'):
        if getattr(args, key) < 1:
            p.error(f'--{key.replace("_", "-")} must be >= 1, got '
                    f'{getattr(args, key)}')
    return args


def schedule(iters, lr=None):
    """The config's schedule rescaled to ``iters`` (as bench/
    uda_ablation.py does): LinearLR over 1/8 of the run then PolyLR, both
    from 0 and multiplied (mmcv's poly with warm-up); mmengine's ``end`` is
    one past the last step. ``lr`` None keeps the config's."""
    warmup = max(1, iters // 8)
    opts = [f'param_scheduler.0.end={warmup + 1}',
            'param_scheduler.1.begin=0', f'param_scheduler.1.end={iters + 1}']
    if lr is not None:
        opts.append(f'optim_wrapper.optimizer.lr={lr}')
    return opts


def run_options(args, iters, lr):
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            f'default_hooks.logger.interval={min(args.log_interval, iters)}',
            f'train_dataloader.num_workers={args.workers}',
            f'train_dataloader.persistent_workers={args.workers > 0}',
            f'randomness.seed={args.seed}'] + schedule(
                iters, lr) + list(args.cfg_options)


#: console lines of a training run the demo shows (everything else --
#: environment, the dumped config, hook tables -- is in the run's log file)
_SHOWN = ('Iter(train)', 'mIoU:', 'Traceback', 'Error', 'error:')


def train(config, work_dir, options, verbose=False):
    """``tools/train.py config`` in a child process. Unless ``verbose``,
    only its progress lines (iteration, losses, ETA) and the validation
    result reach the console; on failure the last 60 lines are shown."""
    cmd = [sys.executable, osp.join(_ROOT, 'tools', 'train.py'), config,
           '--work-dir', work_dir, '--cfg-options', *options]
    print('$ python ' + ' '.join(osp.relpath(c, _ROOT) if c.startswith(
        _ROOT) else c for c in cmd[1:]), flush=True)
    # the configs' data_root is relative to the working directory
    if verbose:
        subprocess.run(cmd, check=True)
        return
    from collections import deque
    tail = deque(maxlen=60)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        for line in proc.stdout:
            tail.append(line)
            if any(k in line for k in _SHOWN):
                print(line, end='', flush=True)
    if proc.returncode != 0:
        sys.stdout.write(''.join(tail))
        raise SystemExit(f'demo: training failed (exit {proc.returncode}); '
                         f'the whole log is under {work_dir}')


def last_checkpoint(work_dir, iters):
    path = osp.join(work_dir, f'iter_{iters}.pth')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'demo: the run in {work_dir} wrote no checkpoint {path}')
    return path


def scalars(work_dir):
    """Every row of the run's ``vis_data/scalars.json`` (newest run dir)."""
    from mmplugins.utils.run_logs import read_scalars
    return read_scalars(work_dir, newest_only=True)


def final_value(rows, key, work_dir):
    """The value of ``key`` logged at the highest step."""
    from mmplugins.utils.run_logs import last_value
    return last_value(rows, key, source=work_dir)


def pseudo_weight_window(config_file):
    """Iterations the logged ``pseudo_weight`` averages over: the window of
    the config's log processor (built as the Runner builds it) when its
    ``mean_pattern`` matches the key, else 1 (the current value)."""
    from mmplugins.utils.run_logs import mean_window
    return mean_window(config_file, 'pseudo_weight')


def warm_start(args, options):
    """Train (or reuse) the source-only warm start; returns (ckpt, mIoU,
    reused)."""
    from mmplugins.utils.warm_start import (cached_warm_start, config_hash,
                                            write_warm_start_stamp)
    wd = osp.join(args.work_dir, 'source_only')
    key = config_hash(args.config, options)
    cached = cached_warm_start(wd, key)
    if cached is not None:
        print(f'[demo] 1/2 source-only warm start: reusing {wd} (same '
              f'config hash {key})', flush=True)
        return cached['checkpoint'], cached['mIoU'], True
    if osp.isdir(wd):
        shutil.rmtree(wd)  # another config: never mix two runs' files
    print(f'[demo] 1/2 source-only warm start, {args.warm_iters} iterations '
          '(the stand-in for ImageNet weights)', flush=True)
    train(args.config, wd, options, args.verbose)
    ckpt = last_checkpoint(wd, args.warm_iters)
    miou = final_value(scalars(wd), 'mIoU', wd)
    write_warm_start_stamp(wd, key, ckpt, mIoU=miou, options=options)
    return ckpt, miou, False


def write_panel(config_path, ckpt, out, num_images):
    """Rows of (target image | teacher pseudo-label | student prediction |
    ground truth) for the first ``num_images`` target val images, at the
    size of each image's ground truth. Pseudo-label pixels below the
    teacher's ``pseudo_threshold`` are shown darkened (they are what
    ``pseudo_weight`` does not count). Returns the panel's (H, W)."""
    import cv2
    import numpy as np
    import torch
    import torch.nn.functional as F
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmplugins  # noqa: F401
    from mmseg.registry import DATASETS, MODELS
    from mmseg.utils import register_all_modules
    from mmplugins.models.uda.utils import colorize, palette_for

    register_all_modules(init_default_scope=False)
    init_default_scope('mmseg')
    import warnings
    cfg = Config.fromfile(config_path)
    with warnings.catch_warnings():
        # mmseg's build_loss / avg_non_ignore notices, already in the logs
        warnings.simplefilter('ignore', UserWarning)
        model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    model.eval()
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    palette = palette_for(model.num_classes,
                          dataset.metainfo.get('palette'))
    rows = []
    with torch.no_grad():
        for i in range(min(num_images, len(dataset))):
            item = dataset[i]
            gt = item['data_samples'].gt_sem_seg.data[0]
            size = tuple(gt.shape)
            batch = model.data_preprocessor(
                dict(inputs=[item['inputs']],
                     data_samples=[item['data_samples']]), False)
            img = batch['inputs']

            def logits(net):
                out = net(img, None, mode='tensor')
                return F.interpolate(out, size=size, mode='bilinear',
                                     align_corners=False)

            prob = logits(model.teacher).softmax(1)[0]
            conf, pseudo = prob.max(0)
            student = logits(model.eval_segmentor).argmax(1)[0]
            raw = item['inputs'].permute(1, 2, 0).numpy()  # BGR, as loaded
            raw = cv2.resize(np.ascontiguousarray(raw), size[::-1],
                             interpolation=cv2.INTER_LINEAR)

            def lbl(x):
                return colorize(x, palette, model.ignore_index).numpy()[
                    ..., ::-1]

            pl = lbl(pseudo).astype(np.float32)
            low = (conf < model.pseudo_threshold).numpy()
            pl[low] *= 0.35
            rows.append(np.concatenate(
                [raw, pl.astype(np.uint8), lbl(student), lbl(gt)], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)))
            for r in rows]
    header = np.full((24, width, 3), 255, np.uint8)
    col_w = rows[0].shape[1] // len(PANEL_COLUMNS)
    for c, name in enumerate(PANEL_COLUMNS):
        cv2.putText(header, name, (c * col_w + 4, 17),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    panel = np.concatenate([header] + rows, axis=0)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if not cv2.imwrite(out, panel):
        raise OSError(f'demo: could not write the panel {out}')
    return panel.shape[:2]


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    config = args.config
    if not osp.isfile(config):
        raise SystemExit(f'demo: config file not found: {config}')
    args.work_dir = osp.abspath(args.work_dir)
    from mmplugins.utils.warm_start import (SOURCE_ONLY_OPTIONS,
                                            student_init_options)
    warm_opts = run_options(args, args.warm_iters, args.lr) + [
        'model.vis_interval=0', *SOURCE_ONLY_OPTIONS]
    ckpt, src_miou, reused = warm_start(args, warm_opts)
    t_warm = time.perf_counter() - t0

    uda_wd = osp.join(args.work_dir, 'mic_dual_aug')
    if osp.isdir(uda_wd):
        shutil.rmtree(uda_wd)
    print(f'[demo] 2/2 {osp.basename(config)} for {args.iters} iterations '
          'from the warm start', flush=True)
    vis = max(1, args.iters // 4)
    uda_opts = run_options(args, args.iters, args.uda_lr) + [
        f'model.vis_interval={vis}', *student_init_options(ckpt)]
    train(config, uda_wd, uda_opts, args.verbose)
    t_uda = time.perf_counter() - t0 - t_warm
    rows = scalars(uda_wd)
    uda_miou = final_value(rows, 'mIoU', uda_wd)
    # logged as the mean over the log processor's window (the runtime's
    # mean_pattern): one batch's confident fraction (2 target crops) is
    # noisy. Also the mean of the values logged over the second half.
    pseudo_weight = final_value(rows, 'pseudo_weight', uda_wd)
    late = [r['pseudo_weight'] for r in rows
            if 'pseudo_weight' in r and r['step'] > args.iters // 2]
    late_pw = sum(late) / len(late) if late else pseudo_weight
    dumped = osp.join(uda_wd, osp.basename(config))
    window = pseudo_weight_window(dumped)
    panel = osp.join(uda_wd, 'demo_panel.png')
    write_panel(dumped, last_checkpoint(uda_wd, args.iters), panel,
                args.num_vis)
    total = time.perf_counter() - t0
    control = None
    if args.control:
        # the same extra iterations, init and lr with every UDA term off:
        # what the source-only model gains from training longer
        ctrl_wd = osp.join(args.work_dir, 'source_only_continued')
        if osp.isdir(ctrl_wd):
            shutil.rmtree(ctrl_wd)
        print(f'[demo] control: source-only for the same {args.iters} '
              'iterations from the warm start', flush=True)
        train(config, ctrl_wd, run_options(args, args.iters, args.uda_lr) + [
            'model.vis_interval=0', *SOURCE_ONLY_OPTIONS,
            *student_init_options(ckpt)], args.verbose)
        control = final_value(scalars(ctrl_wd), 'mIoU', ctrl_wd)
    print('', flush=True)
    print(f'{SUMMARY_PREFIX}{src_miou:.2f} -> MIC+dual {uda_miou:.2f}')
    print(f'  (fisheye val split; source-only = the warm start after '
          f'{args.warm_iters} iterations'
          f'{", reused" if reused else ""}, MIC+dual = {args.iters} UDA '
          f'iterations from it; pseudo_weight {pseudo_weight:.3f} over the '
          f'last {window} iterations, {late_pw:.3f} over the second half)')
    if control is not None:
        print(f'  control: source-only continued for the same {args.iters} '
              f'iterations from the warm start: {control:.2f}')
    print(f'work dir: {uda_wd}')
    print(f'panel: {panel}  ({" | ".join(PANEL_COLUMNS)}; darkened: below '
          'pseudo_threshold)')
    print(f'TensorBoard: .venv/bin/tensorboard --logdir {args.work_dir}')
    print(f'demo time: {total:.0f} s (warm start {t_warm:.0f} s'
          f'{" reused" if reused else ""}, UDA {t_uda:.0f} s; install '
          'excluded)', flush=True)
    if args.results_out:
        write_demo_results(args, argv, dict(
            source_only_mIoU=src_miou, uda_mIoU=uda_miou,
            source_only_continued_mIoU=control,
            final_pseudo_weight=pseudo_weight,
            second_half_pseudo_weight=late_pw,
            pseudo_weight_window=window,
            pseudo_weight=[[r['step'], r['pseudo_weight']] for r in rows
                           if 'pseudo_weight' in r],
            warm_start_reused=reused, warm_start_s=round(t_warm, 1),
            uda_s=round(t_uda, 1), total_s=round(total, 1)))


def write_demo_results(args, argv, figures):
    sys.path.insert(0, osp.join(_ROOT, 'bench'))
    from _common import machine_info, md_table, write_results
    cmd = 'python tools/demo.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    result = dict(config=args.config, warm_iters=args.warm_iters,
                  iters=args.iters, lr=args.lr, uda_lr=args.uda_lr,
                  seed=args.seed,
                  workers=args.workers, machine=machine_info('cpu'),
                  command=cmd, **figures)
    from mmplugins.utils.run_logs import pseudo_weight_label
    md = ['# make demo', ''] + md_table(
        ['source-only (warm start)', 'MIC+dual',
         'source-only continued (control)',
         'final ' + pseudo_weight_label(figures['pseudo_weight_window']),
         'pseudo_weight, 2nd half mean', 'warm start s', 'UDA s', 'total s'],
        [[f'{figures["source_only_mIoU"]:.2f}', f'{figures["uda_mIoU"]:.2f}',
          '' if figures['source_only_continued_mIoU'] is None else
          f'{figures["source_only_continued_mIoU"]:.2f}',
          f'{figures["final_pseudo_weight"]:.3f}',
          f'{figures["second_half_pseudo_weight"]:.3f}',
          figures['warm_start_s'],
          figures['uda_s'], figures['total_s']]]) + ['', f'`{cmd}`']
    write_results('demo', result, md, args.results_out)


if __name__ == '__main__':
    main()
