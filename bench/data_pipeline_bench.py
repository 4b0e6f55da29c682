"""Data pipeline vs model: samples/s of the UDA train dataloader vs training.

Builds the train dataloader of ``configs/mic_dual_aug.py`` exactly as the
Runner does (``Runner.build_dataloader``: ``UDADataset`` with rare class
sampling, the source pipeline with ``DualBranchAug``, the target pipeline,
``--num-workers`` workers, pseudo-collate) and measures the samples/s it
delivers after start-up. In the same run it times the model's
``train_step`` on the same crop (``bench/uda_step_bench.py``'s model and
synthetic batch) -> the samples/s training consumes. Figure:
``loader / consumption`` (goal >= 2: the loader is never the bottleneck).
Also the single-process cost per sample (``num_workers=0``).

``--scale demo``: the demo data and crop of the config (256x512 images,
128x256 crops). ``--scale real`` (issue #15): challenge-size synthetic
frames, 1024x2048 (written once to ``data/samsung_demo_1024x2048``), resized
to 512x1024 with 512x512 crops, and at full resolution with 1024x1024 crops
(HRDA, ``configs/real/mic_hrda_dual_aug_samsung.py``). At that scale the
bench measures, per worker (one process, ``num_workers=0``), the samples/s
of the CPU path (``configs/mic_dual_aug.py``: DualBranchAug in the worker)
and of the device path (``configs/mic_dual_aug_device.py``: the worker only
decodes/resizes/crops/flips and loads the ellipse background), the device
augmentation's cost per sample when the "device" is this CPU, the number of
pipeline runs per item of rare class sampling with whole-pipeline retries
vs crop-only retries, and the workers needed to feed a ``--gpu-step-s``
step of 2 source + 2 target samples. No model step at this scale (a MiT
step at 512^2 takes minutes on a CPU). Writes
``bench/results/data_pipeline[_real].{json,md}``.

Example::

    python bench/data_pipeline_bench.py --batches 20
    python bench/data_pipeline_bench.py --scale real --items 8
"""
import argparse
import copy
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import (ROOT, interleaved_medians, machine_info,  # noqa: E402
                     md_table, set_threads, write_results)

GOAL_RATIO = 2.0
SCALES = {
    # data_root, img_scale (w, h), crop (h, w), RCS min_pixels
    'demo': ('data/samsung_demo', (512, 256), (128, 256), 200),
    'real': ('data/samsung_demo_1024x2048', (1024, 512), (512, 512), 800),
    'real_hrda': ('data/samsung_demo_1024x2048', (2048, 1024), (1024, 1024),
                  3200),
}
#: frame size (h, w) written for each scale's data_root
FRAMES = {'demo': (256, 512), 'real': (1024, 2048), 'real_hrda': (1024, 2048)}


def ensure_data(scale, num_images=12):
    """The demo data of ``scale`` (rendered if the folder is missing)."""
    data_root, _, _, _ = SCALES[scale]
    root = osp.join(ROOT, data_root)
    if not osp.isdir(osp.join(root, 'train_target_image')):
        from mmplugins.datasets.demo.samsung_demo import make_samsung_demo
        h, w = FRAMES[scale]
        n = 200 if scale == 'demo' else num_images
        make_samsung_demo(root, num_train_source=n, num_val_source=4,
                          num_train_target=n, num_val_target=4, num_test=0,
                          height=h, width=w, seed=0)
    return root


def _set_scale(pipeline, img_scale, crop, data_root):
    for t in pipeline:
        if t['type'] == 'Resize':
            t['scale'] = img_scale
        elif t['type'] == 'RandomCrop':
            t['crop_size'] = crop
        elif 'data_root' in t:
            t['data_root'] = data_root


def dataloader_cfg(scale='demo', num_workers=2, batch_size=None,
                   config=None, retry=None):
    """The config's ``train_dataloader`` at ``scale`` (a deep copy)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config or osp.join(ROOT, 'configs',
                                             'mic_dual_aug.py'))
    dl = copy.deepcopy(cfg.train_dataloader)
    data_root, img_scale, crop, min_pixels = SCALES[scale]
    data_root = osp.join(ROOT, data_root)
    for part in ('source', 'target'):
        dl.dataset[part].data_root = data_root
        _set_scale(dl.dataset[part].pipeline, img_scale, crop, data_root)
    if dl.dataset.get('rare_class_sampling'):
        dl.dataset.rare_class_sampling.min_pixels = min_pixels
        if retry is not None:
            dl.dataset.rare_class_sampling.retry = retry
    dl.num_workers = num_workers
    dl.persistent_workers = num_workers > 0
    if batch_size:
        dl.batch_size = batch_size
    return dl, crop


def loader_throughput(dl_cfg, batches, warmup_batches=2):
    """(samples/s after start-up, start-up s, batch size)."""
    from mmengine.runner import Runner
    start = time.perf_counter()
    loader = Runner.build_dataloader(dl_cfg, seed=0)
    it = iter(loader)
    for _ in range(warmup_batches):
        next(it)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        batch = next(it)
        n += len(batch['inputs'])
    elapsed = time.perf_counter() - start
    del it, loader  # stop the workers before the model is timed
    return n / elapsed, startup, dl_cfg['batch_size']


#: the real recipes' elastic warp per crop side (configs/_base_/uda/
#: uda_samsung_camera.py: 512 -> alpha 640, sigma 32; HRDA doubles both)
REAL_ELASTIC = {512: dict(alpha=640, sigma=32), 1024: dict(alpha=1280,
                                                           sigma=64)}


def _real_warp(dl, crop):
    """Set the real recipe's elastic warp in the pipeline's DualBranchAug."""
    for t in dl.dataset.source.pipeline:
        if t['type'] == 'DualBranchAug':
            t['elastic'] = dict(t['elastic'], **REAL_ELASTIC[crop[0]])
    return dl


def _per_worker(scale, config, retry, items):
    """One process (the work of one loader worker): items/s over ``items``
    dataset items after one warm-up item, and the RCS records."""
    dl, crop = dataloader_cfg(scale, 0, config=config, retry=retry)
    _real_warp(dl, crop)
    from mmengine.runner import Runner
    ds = Runner.build_dataloader(dl, seed=0).dataset
    ds[0]  # warm-up: imports, first decode
    records = []
    start = time.perf_counter()
    for i in range(items):
        ds[i]
        records.append(dict(ds.last_rcs or {}))
    elapsed = time.perf_counter() - start
    runs = sum(r.get('pipeline_runs', r.get('attempts', 1)) for r in records)
    crops = sum(r.get('attempts', 1) for r in records)
    return dict(items=items, items_per_s=round(items / elapsed, 3),
                ms_per_item=round(1e3 * elapsed / items, 1),
                pipeline_runs=runs, crops=crops)


def _device_aug_cost(config, crop, batch=2, reps=3):
    """ms per sample of the device DualBranchAug on this CPU (batch of
    ``batch`` crops, median of ``reps`` after one warm-up)."""
    from mmengine.config import Config
    from mmplugins.models.uda.device_aug import build_device_aug
    cfg = Config.fromfile(config)
    augs = cfg.model.data_preprocessor.device_aug
    augs = [dict(a, elastic=dict(a['elastic'], **REAL_ELASTIC[crop[0]]))
            if a['type'] == 'DualBranchAug' else a for a in augs]
    # ellipse drawn on the device here (no packed background): same work
    augs = [dict(a, target_img_dir=None) for a in augs]
    (aug, ) = build_device_aug(augs)
    img = torch.randint(0, 255, (batch, 3, *crop)).float()
    seg = torch.randint(0, 12, (batch, *crop), dtype=torch.uint8)
    aug(img, seg)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        aug(img, seg)
        times.append(time.perf_counter() - start)
    return round(1e3 * sorted(times)[len(times) // 2] / batch, 1)


def real_scale(args):
    """The issue #15 real-scale loader report (see the module docstring)."""
    cpu_cfg = osp.join(ROOT, 'configs', 'mic_dual_aug.py')
    dev_cfg = osp.join(ROOT, 'configs', 'mic_dual_aug_device.py')
    step = args.gpu_step_s or 0.35
    demand = 2 / step  # items/s: 2 (source + target) items per step
    rows, result = [], dict(
        bench='data_pipeline', scale='real', frames=list(FRAMES['real']),
        gpu_step_s=step, items_per_step=2,
        demand_items_per_s=round(demand, 3), items=args.items, variants={})
    for scale in ('real', 'real_hrda'):
        _, img_scale, crop, _ = SCALES[scale]
        if scale == 'real_hrda' and args.no_hrda:
            continue
        for path, config in (('cpu', cpu_cfg), ('device', dev_cfg)):
            for retry in (('pipeline', 'crop') if path == 'cpu' else
                          ('crop', )):
                r = _per_worker(scale, config, retry, args.items)
                key = f'{scale}/{path}/retry={retry}'
                if path == 'device':
                    r['device_aug_ms_per_sample_on_cpu'] = _device_aug_cost(
                        dev_cfg, crop)
                r['workers_for_demand'] = round(demand / r['items_per_s'],
                                                1)
                r['workers_for_2x_demand'] = round(
                    2 * demand / r['items_per_s'], 1)
                r.update(resize_wh=list(img_scale), crop=list(crop))
                result['variants'][key] = r
                rows.append([
                    f'{crop[0]}² of {img_scale[1]}x{img_scale[0]}', path,
                    retry, r['ms_per_item'], r['items_per_s'],
                    f"{r['pipeline_runs']} / {r['crops']}",
                    r.get('device_aug_ms_per_sample_on_cpu', '-'),
                    r['workers_for_demand']])
    md = [f'# UDA loader per worker at the real scale (synthetic '
          f'{FRAMES["real"][0]}x{FRAMES["real"][1]} frames)', '',
          f'One process = one dataloader worker; {args.items} items (1 '
          'source with RCS + 1 target) after a warm-up item. Demand: 2 items '
          f'per {step} s step = {demand:.2f} items/s. "device aug" = the '
          'batched DualBranchAug run on this CPU (batch 2), the price '
          'without a GPU.', '']
    md += md_table(['crop', 'aug on', 'RCS retry', 'ms/item', 'items/s',
                    'pipeline runs / crops', 'device aug ms/sample (CPU)',
                    'workers for demand'], rows)
    result['machine'] = machine_info('cpu')
    write_results('data_pipeline_real', result, md, args.out_dir)
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scale', default='demo', choices=sorted(SCALES))
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--batches', type=int, default=30)
    parser.add_argument('--backbone', default='b0')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--gpu-step-s', type=float, default=None,
                        help='a GPU train_step time (s, same batch size) '
                        'to also report the loader vs that consumer')
    parser.add_argument('--quick', action='store_true',
                        help='10 batches, 2 step reps')
    parser.add_argument('--out-dir', default=None)
    parser.add_argument('--items', type=int, default=8,
                        help='--scale real: items per variant')
    parser.add_argument('--no-hrda', action='store_true',
                        help='--scale real: skip the 1024x1024 crops')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.batches, args.reps = min(args.batches, 10), 2
    import mmplugins  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import uda_step_bench as usb
    usb.quiet_logger()
    ensure_data(args.scale)
    if args.scale.startswith('real'):
        return real_scale(args)

    dl_cfg, crop = dataloader_cfg(args.scale, args.num_workers)
    bs = dl_cfg.batch_size
    loader_sps, startup, _ = loader_throughput(dl_cfg, args.batches)
    main_cfg, _ = dataloader_cfg(args.scale, 0)
    main_batches = max(args.batches // 3, 3)
    main_sps, _, _ = loader_throughput(main_cfg, main_batches, 1)

    model, ow, _ = usb.build(args.backbone, crop, None, 'cpu'
                             if not torch.cuda.is_available() else 'cuda')
    device = next(model.parameters()).device.type
    batch = usb.uda_batch(bs, *crop)
    step = interleaved_medians({'step': lambda: model.train_step(batch, ow)},
                               args.reps, 1, device)['step']['median_s']
    model_sps = bs / step
    ratio = loader_sps / model_sps
    result = dict(
        bench='data_pipeline', scale=args.scale, crop=list(crop),
        batch_size=bs, num_workers=args.num_workers, batches=args.batches,
        loader_samples_per_s=round(loader_sps, 2),
        loader_startup_s=round(startup, 2),
        main_process_ms_per_sample=round(1e3 / main_sps, 1),
        model=f'MiT-{args.backbone.upper()} MIC + dual-branch step',
        model_step_s=round(step, 4), model_samples_per_s=round(model_sps, 3),
        ratio=round(ratio, 2), goal_ratio=GOAL_RATIO,
        goal_met=bool(ratio >= GOAL_RATIO), device=device,
        machine=machine_info(device))
    rows = [[f'train dataloader ({args.num_workers} workers, RCS + '
             'dual-branch)', f'{loader_sps:.2f}'],
            [f'one process: {1e3 / main_sps:.0f} ms/sample',
             f'{main_sps:.2f}'],
            [f'model train_step ({result["model"]}, {device})',
             f'{model_sps:.3f}']]
    if args.gpu_step_s:
        gpu_sps = bs / args.gpu_step_s
        result['gpu_step_s'] = args.gpu_step_s
        result['ratio_vs_gpu_step'] = round(loader_sps / gpu_sps, 2)
        rows.append([f'a GPU step of {args.gpu_step_s} s (given)',
                     f'{gpu_sps:.2f}'])
    md = [f'# Data pipeline vs training ({args.scale} scale, crop '
          f'{crop[0]}x{crop[1]}, batch {bs})', '',
          f'{result["machine"]["device"]}; loader measured over '
          f'{args.batches} batches after start-up ({startup:.1f} s incl. '
          'dataset/RCS init); step = median of '
          f'{args.reps}.', '']
    md += md_table(['consumer / producer', 'samples/s'], rows)
    md += ['', f'**loader / model = {ratio:.1f}x** (goal >= {GOAL_RATIO}: '
           f'{"met" if result["goal_met"] else "NOT met"})'
           + (f'; loader / given GPU step = '
              f'{result["ratio_vs_gpu_step"]:.2f}x' if args.gpu_step_s
              else '') + '.']
    name = 'data_pipeline' + ('' if args.scale == 'demo' else '_' +
                              args.scale)
    write_results(name, result, md, args.out_dir)
    return result


if __name__ == '__main__':
    main()
