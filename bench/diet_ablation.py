"""Per-class AP: full-data training vs diet -> fine-tune at equal compute.

On the driver-inattention demo data (``make_driver_demo``: 600 imbalanced
training images, 200 validation images with boosted rare classes), trains
the stock mmdet RTMDet-tiny of ``configs/diet_det/`` from scratch, twice,
with the same number of images seen (iterations x batch size):

* ``full``: ``--iters`` iterations on the full data
  (``rtmdet_tiny_full_data.py``);
* ``diet_ft``: ``--stage1-iters`` on the diet subset with epoch_parts
  (``stage1_diet.py``), then the rest fine-tuning on the full data from that
  checkpoint (``stage2_finetune.py``: gentler augmentation, lower lr);

and optionally (``--ensemble``) the WBF ensemble of the two models'
predictions (``tools/ensemble_det.py``), as the reference solution did.
Both arms are iteration-based (``IterBasedTrainLoop``; the diet sampler runs
with ``infinite=True``), with a warmup + cosine schedule over their own
iterations. Evaluation: COCO AP (0.5:0.95) and AP50 per class on the
validation split.

Seeds: ``--seeds 0 1 2`` runs the whole comparison once per seed; seed S
generates its own demo data (``make_driver_demo(seed=S)``) and trains both
arms with ``randomness.seed=S``, in its own work dir
``<work-dir>/seed<S>/`` (data, arms, predictions), so seeds never overwrite
each other. An empty or repeated ``--seeds`` is refused.

Writes ONE file ``<out-dir>/diet_ablation.{json,md}`` (``bench/results``,
with the provenance block of ``bench/_common.write_results``): ``per_seed``
(one full per-class result per seed, as a single-seed run gives), and
``summary``: per arm and class the AP / AP50 per seed with mean ± std
(sample std, in AP points x100), and the per-seed differences
``diet_ft - full`` and ``ensemble - full`` of the mean AP with their mean ±
std. ``--update-docs`` also replaces the results table in ``docs/diet.md``.

Example (about 10 min per seed on 2 free cores; ~25 min on a shared one)::

    python bench/diet_ablation.py --iters 300 --stage1-iters 150 \
        --ensemble --seeds 0 1 2 --update-docs
    python bench/diet_ablation.py --iters 60 --stage1-iters 30   # smoke
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import re
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import check_seeds, fmt_pm, mean_std, write_results  # noqa

MODEL_CONFIGS = dict(
    rtmdet=dict(
        full=osp.join(ROOT, 'configs/diet_det/rtmdet_tiny_full_data.py'),
        stage1=osp.join(ROOT, 'configs/diet_det/stage1_diet.py'),
        stage2=osp.join(ROOT, 'configs/diet_det/stage2_finetune.py')),
    yolov5=dict(
        full=osp.join(ROOT, 'configs/diet_det/yolov5_n_full_data.py'),
        stage1=osp.join(ROOT, 'configs/diet_det/yolov5_n_stage1_diet.py'),
        stage2=osp.join(ROOT,
                        'configs/diet_det/yolov5_n_stage2_finetune.py')))
CONFIGS = MODEL_CONFIGS['rtmdet']
#: results file name and docs/diet.md block per model
RESULT_NAME = dict(rtmdet='diet_ablation', yolov5='diet_ablation_yolov5')
DOC = osp.join(ROOT, 'docs', 'diet.md')
DOC_BEGIN = '<!-- diet_ablation:begin -->'
DOC_END = '<!-- diet_ablation:end -->'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', choices=sorted(MODEL_CONFIGS),
                   default='rtmdet',
                   help='rtmdet: mmdet RTMDet-tiny (configs/diet_det/'
                   'rtmdet_tiny_full_data.py, stage1_diet.py, '
                   'stage2_finetune.py); yolov5: mmyolo YOLOv5-n (configs/'
                   'diet_det/yolov5_n_*.py; needs mmyolo, make install)')
    p.add_argument('--iters', type=int, default=300,
                   help='iterations of each arm (equal compute)')
    p.add_argument('--stage1-iters', type=int, default=None,
                   help='diet iterations of the diet_ft arm '
                   '(default: half of --iters)')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--epoch-parts', type=int, default=2)
    p.add_argument('--num-train', type=int, default=600)
    p.add_argument('--num-val', type=int, default=200)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--workers', type=int, default=1,
                   help='dataloader workers')
    p.add_argument('--seeds', type=int, nargs='*', default=[0],
                   help='one run of both arms per seed (e.g. --seeds 0 1 2)'
                   '; the table gives per-seed values and mean ± std')
    p.add_argument('--seed', type=int, default=None,
                   help='one seed (same as --seeds N)')
    p.add_argument('--img-size', type=int, default=192,
                   help='demo image side and network input (configs: 192)')
    p.add_argument('--widen-factor', type=float, default=0.375,
                   help='RTMDet width (configs: 0.375 = RTMDet-tiny); a '
                   'reduced run on a busy machine may use 0.25')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'diet_ablation'))
    p.add_argument('--out-dir', default=osp.join(ROOT, 'bench', 'results'))
    p.add_argument('--arms', nargs='*', choices=['full', 'diet_ft'],
                   default=['full', 'diet_ft'],
                   help='train only these arms (e.g. one process per arm or '
                   'seed; none: only write the table from the arms already '
                   'in --work-dir); the table is written once both arms\' '
                   'results of every seed are in --work-dir')
    p.add_argument('--ensemble', action='store_true',
                   help='also evaluate the WBF ensemble of both arms')
    p.add_argument('--update-docs', action='store_true',
                   help='write the table into docs/diet.md')
    args = p.parse_args(argv)
    args.seeds = check_seeds(
        [args.seed] if args.seed is not None else args.seeds,
        'diet_ablation')
    if args.stage1_iters is None:
        args.stage1_iters = args.iters // 2
    if not 0 < args.stage1_iters < args.iters:
        p.error(f'--stage1-iters must be in (0, {args.iters}), got '
                f'{args.stage1_iters}')
    return args


def load_cfg(path):
    """Config without yapf pretty-printing (seconds per Runner log/dump on
    2 cores; mmengine 0.10.7's fromfile ignores format_python_code)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    return Config(cfg.to_dict(), cfg_text=cfg.text, filename=cfg.filename,
                  format_python_code=False)


def _set_img_size(obj, size):
    """Replace every (192, 192) of the pipelines by (size, size)."""
    if isinstance(obj, dict):
        return {k: _set_img_size(v, size) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if tuple(obj) == (192, 192):
            return (size, size)
        return type(obj)(_set_img_size(v, size) for v in obj)
    return obj


def _leaf_dataset(loader_cfg):
    """The dataset config under a SubsetMixDataset wrapper (or itself)."""
    ds = loader_cfg.dataset
    return ds.dataset if ds.get('type') == 'SubsetMixDataset' else ds


def make_cfg(name, args, data_root, work_dir, iters, sampler=None,
             load_from=None, warmup=50):
    model = getattr(args, 'model', 'rtmdet')
    cfg = load_cfg(MODEL_CONFIGS[model][name])
    if model == 'yolov5':
        from mmplugins.utils.config_scope import strip_stray_scopes
        strip_stray_scopes(cfg)
        # the same iteration-based warmup + cosine as the RTMDet arms, in
        # place of mmyolo's per-epoch YOLOv5ParamSchedulerHook
        cfg.default_hooks.param_scheduler = dict(type='ParamSchedulerHook')
        if args.img_size != 192:
            raise ValueError('--model yolov5 runs at the configs\' 192 px')
    if args.img_size != 192:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[key].dataset.pipeline = _set_img_size(
                cfg[key].dataset.pipeline, args.img_size)
    if model == 'rtmdet' and args.widen_factor != 0.375:
        w = args.widen_factor
        out = int(256 * w)
        cfg.model.backbone.widen_factor = w
        cfg.model.neck.update(in_channels=[int(256 * w), int(512 * w),
                                           int(1024 * w)],
                              out_channels=out)
        cfg.model.bbox_head.update(in_channels=out, feat_channels=out)
    ann_val = osp.join(data_root, 'annotations', 'instances_val.json')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        _leaf_dataset(cfg[key]).data_root = data_root
        cfg[key].num_workers = args.workers
        cfg[key].persistent_workers = args.workers > 0
    cfg.val_evaluator.ann_file = ann_val
    cfg.val_evaluator.outfile_prefix = osp.join(work_dir, 'preds')
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.train_dataloader.sampler = sampler or dict(type='InfiniteSampler',
                                                   shuffle=True)
    lr = cfg.optim_wrapper.optimizer.lr
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=10**9)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=1e-3 if load_from is None else
             0.1, by_epoch=False, begin=0, end=min(warmup, iters)),
        dict(type='CosineAnnealingLR', eta_min=lr * 0.05, begin=0,
             end=iters, T_max=iters, by_epoch=False),
    ]
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters,
        save_last=True, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.log_processor = dict(by_epoch=False)
    cfg.visualizer.name = f'vis_{osp.basename(work_dir)}'
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = work_dir
    cfg.load_from = load_from
    return cfg


def train_and_eval(cfg):
    from mmengine.runner import Runner
    t0 = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    t_train = time.perf_counter() - t0
    runner.val()
    seen = runner.train_loop.iter * cfg.train_dataloader.batch_size
    ckpt = osp.join(cfg.work_dir, f'iter_{runner.train_loop.iter}.pth')
    return dict(train_s=round(t_train, 1), images_seen=seen, ckpt=ckpt,
                preds=cfg.val_evaluator.outfile_prefix + '.bbox.json',
                sampler_pool=len(getattr(runner.train_dataloader.sampler,
                                         'pool', [])))


def coco_per_class(ann_file, preds_file, classes):
    """Per-class AP (0.5:0.95) and AP50 from a COCO results file."""
    import contextlib
    import io

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        dt = gt.loadRes(preds_file) if json.load(open(preds_file)) else None
        if dt is None:
            return {c: dict(ap=0.0, ap50=0.0) for c in classes}
        ev = COCOeval(gt, dt, 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval['precision']  # [T, R, K, A, M]
    out = {}
    name_of = {c['id']: c['name'] for c in gt.loadCats(gt.getCatIds())}
    for k, cat_id in enumerate(ev.params.catIds):
        p = prec[:, :, k, 0, -1]
        p50 = prec[0, :, k, 0, -1]
        out[name_of[cat_id]] = dict(
            ap=float(np.mean(p[p > -1])) if (p > -1).any() else 0.0,
            ap50=float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else 0.0)
    out['mean'] = dict(ap=float(ev.stats[0]), ap50=float(ev.stats[1]))
    return {c: out[c] for c in list(classes) + ['mean']}


def _command(argv):
    """The command line that regenerates the table (without --arms)."""
    argv = list(argv if argv is not None else sys.argv[1:])
    if '--arms' in argv:
        i = argv.index('--arms')
        j = i + 1
        while j < len(argv) and not argv[j].startswith('--'):
            j += 1
        del argv[i:j]
    return 'python bench/diet_ablation.py' + ''.join(f' {a}' for a in argv)


def save_arm(args, arm, result):
    with open(osp.join(args.work_dir, f'result_{arm}.json'), 'w') as f:
        json.dump(result, f, indent=2)


def instance_counts(data_root, split):
    from mmplugins.datasets.demo.driver_demo import DRIVER_CLASSES
    coco = json.load(open(osp.join(data_root, 'annotations',
                                   f'instances_{split}.json')))
    counts = {c: 0 for c in DRIVER_CLASSES}
    for ann in coco['annotations']:
        counts[DRIVER_CLASSES[ann['category_id'] - 1]] += 1
    return counts


def to_markdown(res):
    arms = [a for a in ('full', 'diet_ft', 'ensemble') if a in res['ap']]
    head = '| class | train instances | ' + ' | '.join(
        f'{a} AP / AP50' for a in arms) + ' |'
    lines = [head, '|' + '---|' * (2 + len(arms))]
    for c in res['classes'] + ['mean']:
        n = res['train_instances'].get(c, '')
        cells = []
        aps = [round(100 * res['ap'][b][c]['ap'], 1) for b in arms]
        for a, ap in zip(arms, aps):
            cell = f'{ap:.1f} / {100 * res["ap"][a][c]["ap50"]:.1f}'
            # bold the unique best AP of the row
            best = ap == max(aps) and aps.count(ap) == 1
            cells.append(f'**{cell}**' if best else cell)
        lines.append(f'| {c} | {n} | ' + ' | '.join(cells) + ' |')
    s = res['setup']
    lines.append('')
    lines.append(
        f'Images seen per arm: full {res["images_seen"]["full"]}, diet_ft '
        f'{res["images_seen"]["diet_ft"]} ({s["stage1_iters"]} diet + '
        f'{s["iters"] - s["stage1_iters"]} fine-tune iterations of batch '
        f'{s["batch_size"]}); diet subset {res["diet_subset"]} of '
        f'{s["num_train"]} images, epoch_parts={s["epoch_parts"]}; input '
        f'{s["img_size"]}², {_model_name(s)}. Train '
        f'time: full {res["train_s"]["full"]} s, diet_ft '
        f'{res["train_s"]["diet_ft"]} s on {s["machine"]}.')
    if res.get('command'):  # single-seed files written before --seeds
        lines += ['', f'`{res["command"]}`']
    return '\n'.join(lines) + '\n'


def _model_name(setup):
    if setup.get('model', 'rtmdet') == 'yolov5':
        return 'mmyolo YOLOv5-n'
    return f'RTMDet widen_factor {setup["widen_factor"]}'


def seed_work_dir(work_dir, seed):
    """Work dir of one seed: ``<work_dir>/seed<S>`` (data, arms, preds)."""
    return osp.join(work_dir, f'seed{seed}')


ARMS = ('full', 'diet_ft', 'ensemble')


def summarise(per_seed):
    """Aggregate single-seed results (``per_seed``, each a dict with
    ``setup.seed``, ``classes`` and ``ap[arm][class] = dict(ap, ap50)`` as
    fractions) into ``dict(seeds, ap, delta)``:

    * ``ap[arm][class]`` = ``dict(ap=mean_std, ap50=mean_std)`` in AP points
      (x100), values in seed order, for every arm present in all seeds;
    * ``delta['diet_ft - full']`` (and ``'ensemble - full'``) =
      :func:`mean_std` of the per-seed differences of the mean AP (points).
    """
    if not per_seed:
        raise ValueError("summarise needs at least one seed's result")
    per_seed = sorted(per_seed, key=lambda r: r['setup']['seed'])
    classes = per_seed[0]['classes'] + ['mean']
    arms = [a for a in ARMS if all(a in r['ap'] for r in per_seed)]
    ap = {a: {c: {k: mean_std([100 * r['ap'][a][c][k] for r in per_seed])
                  for k in ('ap', 'ap50')} for c in classes}
          for a in arms}
    delta = {f'{a} - full': mean_std(
        [100 * (r['ap'][a]['mean']['ap'] - r['ap']['full']['mean']['ap'])
         for r in per_seed]) for a in arms if a != 'full'}
    return dict(seeds=[r['setup']['seed'] for r in per_seed], arms=arms,
                ap=ap, delta=delta)


def summary_markdown(summary):
    """Mean ± std table of :func:`summarise` (AP per class and arm), then
    the per-seed mean-AP differences."""
    arms = summary['arms']
    lines = ['| class | ' + ' | '.join(f'{a} AP' for a in arms) + ' |',
             '|' + '---|' * (1 + len(arms))]
    for c, _ in summary['ap'][arms[0]].items():
        lines.append(f'| {c} | ' + ' | '.join(
            fmt_pm(summary['ap'][a][c]['ap'], 1) for a in arms) + ' |')
    lines.append('')
    for name, d in summary['delta'].items():
        lines.append(f'- mean AP {name}: {fmt_pm(d, 1, signed=True)} '
                     '(per seed ' + ', '.join(f'{v:+.1f}' for v in d['values'])
                     + ')')
    return '\n'.join(lines) + '\n'


def update_docs(md, name='diet_ablation'):
    begin, end = f'<!-- {name}:begin -->', f'<!-- {name}:end -->'
    if not osp.isfile(DOC):
        print(f'{DOC} not found; not updated')
        return
    text = open(DOC).read()
    if begin not in text or end not in text:
        print(f'{DOC} has no {begin} ... {end} block; not updated')
        return
    new = re.sub(re.escape(begin) + '.*?' + re.escape(end),
                 lambda _: f'{begin}\n{md}{end}', text, flags=re.S)
    with open(DOC, 'w') as f:
        f.write(new)
    print(f'updated {DOC}')


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    import torch
    torch.set_num_threads(args.threads)
    import mmplugins  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if args.model == 'yolov5':
        from mmplugins.utils.mmyolo_check import require_mmyolo
        require_mmyolo()
        import mmyolo.utils
        mmyolo.utils.register_all_modules(init_default_scope=False)
    t_all = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        sargs = copy.copy(args)
        sargs.seed = seed
        sargs.work_dir = seed_work_dir(args.work_dir, seed)
        res = run_seed(sargs)
        if res is not None:
            per_seed.append(res)
    if len(per_seed) < len(args.seeds):
        print(f'trained {args.arms}; the table needs both arms of every seed'
              f' {args.seeds} under {args.work_dir}')
        return None
    summary = summarise(per_seed)
    command = _command(argv)
    md = (f'Mean ± std over seeds {summary["seeds"]} (AP 0.5:0.95, '
          'points):\n\n' + summary_markdown(summary) + ''.join(
              f'\nSeed {r["setup"]["seed"]}:\n\n' + to_markdown(r)
              for r in per_seed))
    md += f'\n`{command}`\n'
    result = dict(seeds=args.seeds, per_seed=per_seed, summary=summary,
                  total_s=round(time.perf_counter() - t_all, 1),
                  command=command)
    name = RESULT_NAME[args.model]
    write_results(name, result,
                  [f'# Diet -> fine-tune vs full data ({args.model})', '',
                   md.rstrip('\n')], args.out_dir)
    if args.update_docs:
        update_docs(md, name)
    return result


def run_seed(args):
    """Both arms (and the ensemble) of one seed (``args.seed``) in
    ``args.work_dir``; the single-seed result dict, or None while an arm
    is missing (``--arms`` split over processes)."""
    from mmplugins.datasets.demo.driver_demo import (DRIVER_CLASSES,
                                                     make_driver_demo)
    os.makedirs(args.work_dir, exist_ok=True)

    data_root = osp.join(args.work_dir, 'data') + osp.sep
    ann_val = osp.join(data_root, 'annotations', 'instances_val.json')
    if not osp.isfile(ann_val):  # deterministic: reuse between processes
        make_driver_demo(data_root, num_train=args.num_train,
                         num_val=args.num_val, size=args.img_size,
                         seed=args.seed)
    t_all = time.perf_counter()

    if 'full' in args.arms:  # arm 1: full data, --iters iterations
        cfg = make_cfg('full', args, data_root,
                       osp.join(args.work_dir, 'full'), args.iters)
        save_arm(args, 'full', train_and_eval(cfg))

    if 'diet_ft' in args.arms:  # arm 2: diet (infinite, epoch_parts), ft
        stage1_sampler = load_cfg(
            MODEL_CONFIGS[args.model]['stage1']).train_dataloader.sampler
        stage1_sampler.update(infinite=True, epoch_parts=args.epoch_parts)
        cfg = make_cfg('stage1', args, data_root,
                       osp.join(args.work_dir, 'stage1'), args.stage1_iters,
                       sampler=stage1_sampler)
        s1 = train_and_eval(cfg)
        cfg = make_cfg('stage2', args, data_root,
                       osp.join(args.work_dir, 'stage2'),
                       args.iters - args.stage1_iters, load_from=s1['ckpt'],
                       warmup=20)
        s2 = train_and_eval(cfg)
        save_arm(args, 'diet_ft', dict(
            train_s=round(s1['train_s'] + s2['train_s'], 1),
            images_seen=s1['images_seen'] + s2['images_seen'],
            preds=s2['preds'], diet_subset=s1['sampler_pool'], stage1=s1,
            stage2=s2))

    results = {}
    for arm in ('full', 'diet_ft'):
        path = osp.join(args.work_dir, f'result_{arm}.json')
        if osp.isfile(path):
            results[arm] = json.load(open(path))
    if len(results) < 2:
        return None
    if results['full']['images_seen'] != results['diet_ft']['images_seen']:
        raise RuntimeError('arms saw different numbers of images: '
                           f'{results}')

    ap = {arm: coco_per_class(ann_val, results[arm]['preds'],
                              DRIVER_CLASSES) for arm in ('full', 'diet_ft')}
    if args.ensemble:
        from ensemble_det import ensemble_files
        ens = osp.join(args.work_dir, 'ensemble.bbox.json')
        ensemble_files([results['full']['preds'], results['diet_ft']['preds']],
                       ens, method='wbf', iou_thr=0.55)
        ap['ensemble'] = coco_per_class(ann_val, ens, DRIVER_CLASSES)

    machine = (f'{platform.processor() or platform.machine()}, '
               f'{args.threads} thread(s) per arm, {os.cpu_count()} CPUs')
    res = dict(
        classes=list(DRIVER_CLASSES),
        train_instances=instance_counts(data_root, 'train'),
        val_instances=instance_counts(data_root, 'val'),
        diet_subset=results['diet_ft']['diet_subset'],
        images_seen={a: results[a]['images_seen']
                     for a in ('full', 'diet_ft')},
        train_s={a: results[a]['train_s'] for a in ('full', 'diet_ft')},
        total_s=round(time.perf_counter() - t_all, 1),
        ap=ap,
        setup=dict(iters=args.iters, stage1_iters=args.stage1_iters,
                   batch_size=args.batch_size, epoch_parts=args.epoch_parts,
                   num_train=args.num_train, num_val=args.num_val,
                   img_size=args.img_size, widen_factor=args.widen_factor,
                   model=args.model, seed=args.seed, threads=args.threads,
                   workers=args.workers, machine=machine))
    return res


if __name__ == '__main__':
    main()
