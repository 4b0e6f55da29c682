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
128x256 crops). ``--scale real``: the challenge's scale (images resized to
1024x540, 512x512 crops) on demo images rendered at 540x1024 (written once
to ``data/samsung_demo_540x1024``). Writes
``bench/results/data_pipeline[_real].{json,md}``.

Example::

    python bench/data_pipeline_bench.py --batches 20
    python bench/data_pipeline_bench.py --scale real --gpu-step-s 0.35
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
    'real': ('data/samsung_demo_540x1024', (1024, 540), (512, 512), 800),
}


def ensure_data(scale, num_images=24):
    """The demo data of ``scale`` (rendered if the folder is missing)."""
    data_root, _, _, _ = SCALES[scale]
    root = osp.join(ROOT, data_root)
    if not osp.isdir(osp.join(root, 'train_target_image')):
        from mmplugins.datasets.demo.samsung_demo import make_samsung_demo
        h, w = (256, 512) if scale == 'demo' else (540, 1024)
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
                   config=None):
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
