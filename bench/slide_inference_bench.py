"""Batched vs sequential (mmseg stock) slide inference: speed and equality.

Builds one MiT-B0 + SegformerHead EncoderDecoder (random init, eval mode),
runs mmseg's ``EncoderDecoder.slide_inference`` and mmplugins'
``batched_slide_inference`` on the same images, crops and stride, checks the
logits agree, and reports the median wall time of each and the speed-up.
Writes ``bench/results/slide_inference.{json,md}``.

Example::

    python bench/slide_inference_bench.py --height 256 --width 512 \
        --crop 128 --stride 85 --batch-sizes 4 8 0 --repeats 3
"""
import argparse
import os
import os.path as osp
import platform
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import write_results  # noqa: E402

import mmplugins  # noqa: E402,F401
from mmengine.config import ConfigDict  # noqa: E402
from mmseg.models.segmentors import EncoderDecoder  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

from mmplugins.models.segmentors.batched_slide import (  # noqa: E402
    batched_slide_inference, slide_windows)

MIT_B0 = dict(
    type='MixVisionTransformer', in_channels=3, embed_dims=32,
    num_stages=4, num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
    patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
    out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True,
    drop_path_rate=0.1, init_cfg=None)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--num-images', type=int, default=1)
    parser.add_argument('--crop', type=int, default=128)
    parser.add_argument('--stride', type=int, default=85)
    parser.add_argument('--num-classes', type=int, default=12)
    parser.add_argument('--batch-sizes', type=int, nargs='+',
                        default=[4, 0], help='crops per forward; 0 = all')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-tf32', action='store_true',
                        help='CUDA: disable TF32 in cuDNN convs/matmuls; '
                        'with TF32 (torch default for cuDNN) batched and '
                        'sequential logits differ by ~1e-3 because the '
                        'batch size changes the conv algorithm')
    parser.add_argument('--out-dir', default=osp.join(ROOT, 'bench',
                                                      'results'))
    return parser.parse_args()


def timed(fn, repeats, device):
    times, out = [], None
    for _ in range(repeats):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    crop, stride = (args.crop, args.crop), (args.stride, args.stride)
    model = MODELS.build(ConfigDict(
        type='EncoderDecoder', backbone=MIT_B0,
        decode_head=dict(type='SegformerHead',
                         in_channels=[32, 64, 160, 256],
                         in_index=[0, 1, 2, 3], channels=256,
                         dropout_ratio=0.1, num_classes=args.num_classes,
                         norm_cfg=dict(type='BN'), align_corners=False),
        test_cfg=dict(mode='slide', crop_size=crop, stride=stride)))
    model = model.to(args.device).eval()
    h, w, n = args.height, args.width, args.num_images
    inputs = torch.randn(n, 3, h, w, device=args.device)
    metas = [dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w),
                  padding_size=[0, 0, 0, 0]) for _ in range(n)]
    num_crops = n * len(slide_windows(h, w, crop, stride))

    variants = [('sequential', lambda: EncoderDecoder.slide_inference(
        model, inputs, [dict(m) for m in metas]))]
    for bs in args.batch_sizes:
        variants.append((bs, (lambda b: lambda: batched_slide_inference(
            model.encode_decode, inputs, metas, crop, stride,
            model.out_channels, b))(None if bs == 0 else bs)))
    times = {name: [] for name, _ in variants}
    outs = {}
    with torch.no_grad():
        for name, fn in variants:  # warm-up outside the timings
            outs[name] = fn()
        # round-robin repeats: load changes on a shared machine hit every
        # variant alike instead of biasing whichever ran last
        for _ in range(args.repeats):
            for name, fn in variants:
                times[name].append(timed(fn, 1, args.device)[0])
    seq_s = statistics.median(times['sequential'])
    rows = []
    for bs in args.batch_sizes:
        bat_s = statistics.median(times[bs])
        rows.append(dict(batch_size=bs if bs else 'all',
                         batched_s=round(bat_s, 4),
                         speedup=round(seq_s / bat_s, 3),
                         max_abs_diff=float(
                             (outs[bs] - outs['sequential']).abs().max())))

    result = dict(
        model='MiT-B0 + SegformerHead (random init, eval)',
        device=args.device if args.device != 'cpu' else
        f'cpu ({torch.get_num_threads()} threads, {platform.processor()})',
        tf32=bool(args.device.startswith('cuda') and not args.no_tf32
                  and torch.backends.cudnn.allow_tf32),
        torch=torch.__version__, images=n, image_size=[h, w],
        crop_size=list(crop), stride=list(stride), crops=num_crops,
        repeats=args.repeats, sequential_s=round(seq_s, 4), batched=rows)
    lines = [
        '# Slide inference: batched vs mmseg sequential', '',
        f"{result['model']}, {result['device']}"
        f"{' (TF32 convs)' if result['tf32'] else ''}, "
        f'torch {torch.__version__}; '
        f'{n} image(s) {h}x{w}, crop {crop}, stride {stride} -> '
        f'{num_crops} crops; median of {args.repeats} runs.', '',
        '| batch_size | sequential (s) | batched (s) | speed-up | '
        'max abs diff |', '|---|---|---|---|---|'
    ]
    for row in rows:
        lines.append(f"| {row['batch_size']} | {seq_s:.4f} | "
                     f"{row['batched_s']:.4f} | {row['speedup']:.2f}x | "
                     f"{row['max_abs_diff']:.2e} |")
    write_results('slide_inference', result, lines, args.out_dir)


if __name__ == '__main__':
    main()
