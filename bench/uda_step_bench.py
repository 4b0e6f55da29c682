"""UDA step overhead: one MIC + dual-branch step vs its passes timed alone.

Builds :class:`~mmplugins.models.uda.UDASegmentor` from
``configs/mic_dual_aug.py`` (mmseg ``MODELS``, scope ``mmseg``) and a
synthetic UDA batch in the dataloader's format (uint8 source / distortion /
target images and labels at the config crop), then times, interleaved,
median of ``--reps`` after warm-up:

* ``model.train_step(batch, optim_wrapper)`` -- the whole iteration (EMA,
  pseudo-labels, class mix, strong aug, block mask, 4 backward passes, one
  optimizer step);
* each constituent pass *alone*, with the same student and teacher: the
  teacher forward on the target, and student forward + decode-head
  cross-entropy + backward on the source, the distortion view, a mixed and a
  masked image.

Figure: ``step / sum(passes)`` (goal <= 1.10), plus the time of the
remaining pieces alone (optimizer step, EMA update, strong augmentation,
class mix) so that the overhead is explained. Peak memory of the MIC step
vs source-only (``mix=None, mask_lambda=0, dual_branch_lambda=0``) is
measured in a fresh subprocess per variant: CPU peak RSS, or CUDA max
allocated on a GPU. Writes ``bench/results/uda_step.{json,md}``.

Example::

    python bench/uda_step_bench.py                     # config crop, CPU
    python bench/uda_step_bench.py --backbone b5 --crop 512 512 --amp \
        --device cuda                                  # the GPU figure
"""
import argparse
import copy
import os.path as osp
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import (ROOT, RSSSampler, current_rss_mb,  # noqa: E402
                     interleaved_medians, machine_info, md_table,
                     peak_memory_mb, reset_peak_memory, resolve_device,
                     run_json_subprocess, set_threads, sync, write_results)

CONFIG = osp.join(ROOT, 'configs', 'mic_dual_aug.py')
GOAL_RATIO = 1.10

#: MiT encoders (mmseg's mit_b0/b2/b5) and the DAFormer head width used with
#: each (64 keeps the fusion cost in proportion to B0, as in the config;
#: 256 is DAFormer's for B5)
MIT = {
    'b0': dict(embed_dims=32, num_layers=[2, 2, 2, 2], head=64),
    'b1': dict(embed_dims=64, num_layers=[2, 2, 2, 2], head=256),
    'b2': dict(embed_dims=64, num_layers=[3, 4, 6, 3], head=256),
    'b3': dict(embed_dims=64, num_layers=[3, 4, 18, 3], head=256),
    'b4': dict(embed_dims=64, num_layers=[3, 8, 27, 3], head=256),
    'b5': dict(embed_dims=64, num_layers=[3, 6, 40, 3], head=256),
}
SOURCE_ONLY = dict(mix=None, mask_lambda=0.0, dual_branch_lambda=0.0)


def quiet_logger():
    """Make mmengine's current logger warning-only (no per-parameter
    optimizer lines in the bench output)."""
    from mmengine.logging import MMLogger
    if not MMLogger.check_instance_created('bench'):
        MMLogger.get_instance('bench', log_level='WARNING')


def model_cfg(backbone='b0', crop=None, overrides=None, config=CONFIG):
    """The config's ``model`` with another MiT size / crop / options."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    model = copy.deepcopy(cfg.model)
    if backbone not in MIT:
        raise ValueError(f'backbone must be one of {sorted(MIT)}, but got '
                         f'backbone={backbone!r}')
    spec = MIT[backbone]
    if backbone != 'b0':  # b0 is the config as written
        dims = spec['embed_dims']
        model.segmentor.backbone.update(embed_dims=dims,
                                        num_layers=spec['num_layers'])
        model.segmentor.decode_head.update(
            in_channels=[dims, dims * 2, dims * 5, dims * 8],
            channels=spec['head'], embed_dims=spec['head'])
    if crop is not None:
        crop = tuple(crop)
        model.data_preprocessor.size = crop
        # MIC's reference block: 32 px at 512^2 (1/16 of the crop)
        model.mask_block_size = max(min(crop) // 16, 1)
    model.vis_interval = 0
    model.update(overrides or {})
    return model, (model.data_preprocessor.size
                   if crop is None else crop), cfg


def build(backbone='b0', crop=None, overrides=None, device='cpu', amp=False,
          config=CONFIG):
    """(UDASegmentor in train mode, optim wrapper, crop (h, w))."""
    import mmplugins  # noqa: F401  (registers the UDA modules)
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    quiet_logger()
    mcfg, crop, cfg = model_cfg(backbone, crop, overrides, config)
    model = MODELS.build(mcfg)
    model.init_weights()
    model = model.to(device).train()
    if str(device).startswith('cuda'):
        # as the configs' env_cfg (cudnn_benchmark=True) in training
        torch.backends.cudnn.benchmark = True
    ow_cfg = copy.deepcopy(cfg.optim_wrapper)
    if amp:
        ow_cfg.type = 'AmpOptimWrapper'
        ow_cfg.dtype = 'float16'
    optim_wrapper = build_optim_wrapper(model, ow_cfg)
    return model, optim_wrapper, tuple(crop)


def uda_batch(n, h, w, num_classes=12, seed=0):
    """Synthetic batch in the UDA dataloader's format (after collate).

    Labels are 8x8-pixel blocks of random classes with some ignore pixels;
    images are uint8 and correlated with the labels, as from
    ``UDADataset`` + ``PackDualBranchSegInputs``.
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    def sample(label=None):
        ds = SegDataSample()
        ds.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                             pad_shape=(h, w)))
        if label is not None:
            ds.gt_sem_seg = PixelData(data=label[None])
        return ds

    g = torch.Generator().manual_seed(seed)
    batch = {k: [] for k in ('inputs', 'data_samples', 'dist_inputs',
                             'dist_data_samples', 'target_inputs',
                             'target_data_samples')}
    for _ in range(n):
        lbl = torch.randint(0, num_classes, ((h + 7) // 8, (w + 7) // 8),
                            generator=g)
        lbl = lbl.repeat_interleave(8, 0).repeat_interleave(8, 1)[:h, :w]
        lbl[torch.rand(h, w, generator=g) < 0.05] = 255
        img = (lbl[None].float() * 17 + torch.rand(3, h, w, generator=g) * 40
               ).clamp(0, 255).to(torch.uint8)
        batch['inputs'].append(img)
        batch['data_samples'].append(sample(lbl.to(torch.uint8)))
        batch['dist_inputs'].append(img.flip(-1).contiguous())
        batch['dist_data_samples'].append(
            sample(lbl.flip(-1).to(torch.uint8)))
        batch['target_inputs'].append(255 - img)
        batch['target_data_samples'].append(sample())
    return batch


def pass_inputs(model, batch, device, mask_block_size=None):
    """What every timed pass is fed: the preprocessed batch groups, their
    labels, and a fixed stand-in for what the step derives from the teacher
    (pseudo-labels, weight 0.7, a 50 % mix of source and target, the target
    under a 0.7 MIC block mask; blocks of ``mask_block_size``, default 1/16
    of the crop as MIC's 32 px at 512²), drawn from one seeded generator."""
    from mmplugins.models.uda.masking_consistency import block_mask
    data = model.data_preprocessor(batch, True)
    src, tgt = data['inputs'], data['target_inputs']
    n, _, h, w = src.shape
    g = torch.Generator().manual_seed(1)
    pseudo = torch.randint(0, model.num_classes, (n, h, w),
                           generator=g).to(device)
    weight = torch.full((n, h, w), 0.7, device=device)
    mixed = torch.where(torch.rand(n, 1, h, w, generator=g).to(device) > 0.5,
                        src, tgt)
    if mask_block_size is None:
        mask_block_size = max(min(h, w) // 16, 1)
    keep = block_mask(tgt.shape, mask_block_size, 0.7, generator=g).to(tgt)
    return dict(data=data, src=src, tgt=tgt, dist=data['dist_inputs'],
                src_gt=model._gt(data['data_samples']),
                dist_gt=model._gt(data['dist_data_samples']),
                pseudo=pseudo, weight=weight, mixed=mixed,
                masked=tgt * keep)


def pass_fns(model, batch, device, amp=False):
    """The constituent passes of a UDA step, each a callable timed alone.

    Same student/teacher as the step; inputs are the preprocessed batch
    groups; loss = the decode head's cross-entropy (pixel-weighted for the
    pseudo-labelled images) on logits resized to the label, then backward.
    """
    from mmseg.models.utils import resize
    x = pass_inputs(model, batch, device)
    data, tgt = x['data'], x['tgt']
    src, dist, src_gt, dist_gt = x['src'], x['dist'], x['src_gt'], \
        x['dist_gt']
    pseudo, weight, mixed, masked = x['pseudo'], x['weight'], x['mixed'], \
        x['masked']
    student, teacher = model.student, model.teacher
    autocast = (lambda: torch.autocast('cuda', dtype=torch.float16)) \
        if amp and str(device).startswith('cuda') else None

    def ctx():
        import contextlib
        return autocast() if autocast else contextlib.nullcontext()

    def student_pass(x, label, w=None):
        def fn():
            student.zero_grad(set_to_none=True)
            with ctx():
                logits = student(x, None, mode='tensor')
                logits = resize(logits, size=label.shape[-2:],
                                mode='bilinear', align_corners=False)
                loss = F.cross_entropy(logits.float(), label,
                                       ignore_index=255,
                                       reduction='none' if w is not None
                                       else 'mean')
                if w is not None:
                    loss = (loss * w).mean()
            loss.backward()
        return fn

    def teacher_pass():
        with torch.no_grad(), ctx():
            teacher(tgt, None, mode='tensor')

    return {
        'teacher fwd (target)': teacher_pass,
        'student fwd+bwd (source)': student_pass(src, src_gt),
        'student fwd+bwd (distortion view)': student_pass(dist, dist_gt),
        'student fwd+bwd (mixed)': student_pass(mixed, pseudo, weight),
        'student fwd+bwd (masked)': student_pass(masked, pseudo, weight),
    }, data


def other_fns(model, optim_wrapper, data):
    """The non-pass pieces of a step, for the overhead breakdown."""
    from mmplugins.models.uda.utils import (class_mix_masks, ema_update,
                                            strong_transform)
    src, tgt = data['inputs'], data['target_inputs']
    src_gt = model._gt(data['data_samples'])
    mean, std = model.data_preprocessor.domain_stats('source')

    def opt_step():
        for p in model.student.parameters():
            if p.requires_grad and p.grad is None:
                p.grad = torch.zeros_like(p)
        optim_wrapper.step()

    return {
        'optimizer step': opt_step,
        'EMA update': lambda: ema_update(model.teacher, model.student, 0.99),
        'strong aug x2 (mix + masked)':
        lambda: [strong_transform(x, mean, std) for x in (src, tgt)],
        'class-mix masks': lambda: class_mix_masks(src_gt),
        'data preprocessor': lambda: model.data_preprocessor(
            data['_raw'], True),
    }


def measure_memory(backbone, crop, batch_size, overrides, device, amp,
                   steps=2):
    """Peak memory of train_steps in *this* process (call in a fresh one)."""
    model, ow, crop = build(backbone, crop, overrides, device, amp)
    batch = uda_batch(batch_size, *crop)
    cuda = str(device).startswith('cuda')
    sync(device)
    reset_peak_memory(device)
    base = (torch.cuda.memory_allocated() / 2**20 if cuda else
            current_rss_mb())
    with RSSSampler() as rss:
        for _ in range(steps):
            model.train_step(batch, ow)
        sync(device)
    peak = peak_memory_mb(device) if cuda else rss.peak_mb
    return dict(peak_mb=round(peak, 1), before_step_mb=round(base, 1),
                step_mb=round(peak - base, 1),
                kind='cuda_max_allocated' if cuda else 'rss')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backbone', default='b0', choices=sorted(MIT))
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'),
                        help='default: the config crop (128 256)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--amp', action='store_true',
                        help='fp16 autocast (CUDA only)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the subprocess memory figures')
    parser.add_argument('--quick', action='store_true',
                        help='reps 2, warm-up 1')
    parser.add_argument('--memory-variant', choices=['mic', 'source_only'],
                        help=argparse.SUPPRESS)
    parser.add_argument('--out-dir', default=None)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    device = resolve_device(args.device)
    if args.quick:
        args.reps, args.warmup = 2, 1
    if args.memory_variant:
        import json
        over = SOURCE_ONLY if args.memory_variant == 'source_only' else {}
        print(json.dumps(measure_memory(args.backbone, args.crop,
                                        args.batch_size, over, device,
                                        args.amp)))
        return None

    torch.manual_seed(0)
    model, ow, crop = build(args.backbone, args.crop, None, device, args.amp)
    src_model, src_ow, _ = build(args.backbone, args.crop, SOURCE_ONLY,
                                 device, args.amp)
    batch = uda_batch(args.batch_size, *crop)
    passes, data = pass_fns(model, batch, device, args.amp)
    data['_raw'] = batch
    others = other_fns(model, ow, data)
    step = {'MIC + dual-branch train_step':
            lambda: model.train_step(batch, ow),
            'source-only train_step':
            lambda: src_model.train_step(batch, src_ow)}
    timed = interleaved_medians(dict(step, **passes), args.reps, args.warmup,
                                device)
    extra = interleaved_medians(others, args.reps, 1, device)
    step_s = timed['MIC + dual-branch train_step']['median_s']
    src_s = timed['source-only train_step']['median_s']
    pass_sum = sum(timed[k]['median_s'] for k in passes)
    ratio = step_s / pass_sum

    memory = None
    if not args.no_memory:
        common = ['bench/uda_step_bench.py', '--backbone', args.backbone,
                  '--batch-size', str(args.batch_size), '--device', device]
        if args.crop:
            common += ['--crop', *map(str, args.crop)]
        if args.amp:
            common.append('--amp')
        if args.threads:
            common += ['--threads', str(args.threads)]
        memory = {v: run_json_subprocess(common + ['--memory-variant', v])
                  for v in ('mic', 'source_only')}
        memory['peak_ratio'] = round(
            memory['mic']['peak_mb'] / memory['source_only']['peak_mb'], 3)
        memory['step_ratio'] = round(
            memory['mic']['step_mb'] /
            max(memory['source_only']['step_mb'], 1e-6), 3)

    result = dict(
        bench='uda_step', config='configs/mic_dual_aug.py',
        backbone=f'MiT-{args.backbone.upper()}', crop=list(crop),
        batch_size=args.batch_size, amp=bool(args.amp), device=device,
        reps=args.reps, warmup=args.warmup,
        step_s=round(step_s, 5), source_only_step_s=round(src_s, 5),
        pass_sum_s=round(pass_sum, 5), overhead_ratio=round(ratio, 4),
        goal_ratio=GOAL_RATIO, goal_met=bool(ratio <= GOAL_RATIO),
        mic_vs_source_only_time=round(step_s / src_s, 3),
        samples_per_s=round(args.batch_size / step_s, 3),
        timings={k: round(v['median_s'], 5) for k, v in timed.items()},
        raw_times={k: v['times_s'] for k, v in timed.items()},
        other_pieces_s={k: round(v['median_s'], 5)
                        for k, v in extra.items()},
        memory=memory, machine=machine_info(device))
    rows = [[k, f'{v["median_s"] * 1e3:.1f}'] for k, v in timed.items()]
    rows.append(['**sum of the 5 passes**', f'{pass_sum * 1e3:.1f}'])
    rows += [[f'(alone) {k}', f'{v["median_s"] * 1e3:.1f}']
             for k, v in extra.items()]
    md = [f'# UDA step overhead (MiT-{args.backbone.upper()}, crop '
          f'{crop[0]}x{crop[1]}, batch {args.batch_size}, {device}'
          f'{", AMP" if args.amp else ""})', '',
          f'Median of {args.reps} interleaved reps after {args.warmup} '
          f'warm-up; {result["machine"]["device"]}, torch '
          f'{torch.__version__}, {torch.get_num_threads()} thread(s).', '']
    md += md_table(['part', 'ms'], rows)
    md += ['', f'**step / sum of passes = {ratio:.3f}** (goal <= '
           f'{GOAL_RATIO}: {"met" if result["goal_met"] else "NOT met"}); '
           f'MIC step / source-only step = '
           f'{result["mic_vs_source_only_time"]:.2f}.']
    if memory:
        md += ['', *md_table(['variant', f'peak ({memory["mic"]["kind"]}) MiB',
                              'step increment MiB'],
                             [[v, memory[v]['peak_mb'], memory[v]['step_mb']]
                              for v in ('mic', 'source_only')]),
               '', f'Peak ratio MIC / source-only: {memory["peak_ratio"]} '
               f'(step increment ratio {memory["step_ratio"]}).']
    write_results('uda_step', result, md, args.out_dir)
    return result


if __name__ == '__main__':
    main()
