"""Scaling: MIC step time per MiT size and crop, and DDP 1 vs 2 processes.

1. The MIC + dual-branch ``train_step`` of ``configs/mic_dual_aug.py``
   (``bench/uda_step_bench.py``'s model and synthetic batch) with the MiT-B0,
   B2 and B5 encoders at 256x256 and 512x512 crops, one line each, so a
   user can predict the cost of a configuration on their hardware. Lines
   run cheapest first. From the first line's step time and a rough
   compute ratio per encoder and crop, a line predicted to exceed
   ``--line-budget-s`` (or what is left of ``--budget-s``) is skipped and
   listed as such; a line whose warm-up step leaves no room for more
   reports that one step (marked). So the table fits a time budget on a
   small CPU and is complete on a GPU.
2. DDP throughput: the same UDA model wrapped in mmengine's
   ``MMSeparateDistributedDataParallel`` (as the configs' ``model_wrapper_cfg``
   does) with gloo, launched by ``torch.distributed.run`` with 1 and 2
   processes that share the same total number of intra-op threads
   (``--ddp-total-threads``, 2: one process with 2 threads vs two
   processes with 1 thread each), so the figure compares data parallelism
   with intra-op parallelism on the same cores. Each run does
   ``--ddp-warmup`` (2) untimed steps, then ``--ddp-steps`` (20) timed
   steps, each between two barriers; samples/s = processes x batch x
   timed steps / their summed time (the median step is reported too).
   Figure = 2-process / 1-process throughput at the same total threads.
   A third run, 1 process with 1 thread, gives DDP's scaling efficiency
   (2 x 1 thread vs 1 x 1 thread, ideal 2x): on a CPU shared with other
   jobs a multi-threaded single process can collapse under
   oversubscription, which the first figure then shows and this one does
   not.

Writes ``bench/results/scaling.{json,md}``.

Example::

    python bench/scaling_bench.py --backbones b0 b2 b5 --crops 256 512
    python bench/scaling_bench.py --device cuda --amp --no-ddp
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import (ROOT, interleaved_medians, machine_info,  # noqa: E402
                     md_table, resolve_device, set_threads, sync,
                     write_results)


#: rough compute of a MiT segmentor relative to B0 (SegFormer GFLOPs at
#: 512x512: 8.4, 15.9, 62.4, 79.0, 95.7, 183.3), used only to skip lines
#: that would not fit the time budget
COST = dict(b0=1.0, b1=1.9, b2=7.4, b3=9.4, b4=11.4, b5=21.8)


def step_line(backbone, crop, batch_size, reps, device, amp, budget_s):
    """One table line: params and the median MIC step time.

    The first step is the warm-up; the median of up to ``reps`` more is
    reported if they fit ``budget_s``, else the first step (flagged).
    """
    import uda_step_bench as usb
    model, ow, crop = usb.build(backbone, (crop, crop), None, device, amp)
    params = sum(p.numel() for p in model.student.parameters()) / 1e6
    batch = usb.uda_batch(batch_size, *crop)
    sync(device)
    start = time.perf_counter()
    model.train_step(batch, ow)
    sync(device)
    first = time.perf_counter() - start
    if str(device).startswith('cuda'):
        # without the first step's one-off cuDNN algorithm search
        torch.cuda.reset_peak_memory_stats()
    line = dict(backbone=f'MiT-{backbone.upper()}', crop=crop[0],
                batch_size=batch_size, student_params_m=round(params, 1),
                first_step_s=round(first, 3))
    reps = max(0, min(reps, int((budget_s - first) / max(first, 1e-3))))
    if reps == 0:
        line.update(step_s=round(first, 3), reps=0,
                    note='one step incl. warm-up (line budget)')
    else:
        t = interleaved_medians({'s': lambda: model.train_step(batch, ow)},
                                reps, 0, device)['s']['median_s']
        line.update(step_s=round(t, 4), reps=reps)
    line['samples_per_s'] = round(batch_size / line['step_s'], 3)
    if str(device).startswith('cuda'):
        line['cuda_max_allocated_mb'] = round(
            torch.cuda.max_memory_allocated() / 2**20, 1)
    del model, ow
    return line


# ------------------------------------------------------------------ DDP
def ddp_worker(args):
    """Body of one DDP process (launched by torch.distributed.run)."""
    import torch.distributed as dist
    import mmplugins  # noqa: F401  (CPU gloo fixes)
    from mmengine.model import MMSeparateDistributedDataParallel
    import uda_step_bench as usb
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(args.ddp_threads_per_process)
    torch.manual_seed(0)
    model, _, crop = usb.build(args.ddp_backbone, None, None, 'cpu')
    wrapped = MMSeparateDistributedDataParallel(
        module=model, broadcast_buffers=False, find_unused_parameters=False)
    from mmengine.optim import build_optim_wrapper
    from mmengine.config import Config
    cfg = Config.fromfile(usb.CONFIG)
    ow = build_optim_wrapper(wrapped, cfg.optim_wrapper)
    batch = usb.uda_batch(args.batch_size, *crop, seed=rank)
    times = []
    for i in range(args.ddp_warmup + args.ddp_steps):
        dist.barrier()
        start = time.perf_counter()
        wrapped.train_step(batch, ow)
        dist.barrier()
        if i >= args.ddp_warmup:
            times.append(time.perf_counter() - start)
    # identical weights on every rank after the steps = gradients synced
    w = next(model.student.parameters()).detach().clone()
    gathered = [torch.zeros_like(w) for _ in range(world)]
    dist.all_gather(gathered, w)
    if rank == 0:
        total = sum(times)
        print(json.dumps(dict(
            world_size=world, warmup_steps=args.ddp_warmup,
            timed_steps=len(times), timed_total_s=round(total, 4),
            step_s=round(statistics.median(times), 4),
            step_times_s=[round(t, 4) for t in times],
            samples_per_s=round(
                world * args.batch_size * len(times) / total, 3),
            weights_in_sync=all(torch.equal(g, gathered[0])
                                for g in gathered),
            threads_per_process=torch.get_num_threads())))
    dist.destroy_process_group()


def ddp_run(nproc, args, threads=None):
    """Launch ``nproc`` DDP processes; returns rank 0's JSON.

    Every process gets ``threads`` intra-op threads (OMP_NUM_THREADS and
    ``torch.set_num_threads``); by default ``args.ddp_total_threads //
    nproc``, so 1 and 2 processes use the same total.
    """
    threads = threads or args.ddp_total_threads // nproc
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           f'--nproc_per_node={nproc}', osp.abspath(__file__), '--ddp-worker',
           '--ddp-steps', str(args.ddp_steps), '--ddp-warmup',
           str(args.ddp_warmup), '--ddp-threads-per-process', str(threads),
           '--batch-size',
           str(args.batch_size), '--ddp-backbone', args.ddp_backbone]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=args.ddp_timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'DDP run with {nproc} processes failed (rc '
                           f'{proc.returncode}):\n{proc.stderr[-3000:]}')
    return json.loads(lines[-1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backbones', nargs='+', default=['b0', 'b2', 'b5'])
    parser.add_argument('--crops', type=int, nargs='+', default=[256, 512])
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--line-budget-s', type=float, default=120.0,
                        help='time a line may take (see the module doc)')
    parser.add_argument('--budget-s', type=float, default=900.0,
                        help='time all lines may take')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--no-ddp', action='store_true')
    parser.add_argument('--ddp-steps', type=int, default=20,
                        help='timed DDP steps per run (after the warm-up)')
    parser.add_argument('--ddp-warmup', type=int, default=2,
                        help='untimed DDP steps first')
    parser.add_argument('--ddp-backbone', default='b0')
    parser.add_argument('--ddp-total-threads', type=int, default=2,
                        help='intra-op threads of all DDP processes together'
                        ' (even: 1 process gets them all, 2 processes half '
                        'each)')
    parser.add_argument('--ddp-threads-per-process', type=int, default=1,
                        help=argparse.SUPPRESS)
    parser.add_argument('--ddp-timeout', type=float, default=600)
    parser.add_argument('--quick', action='store_true',
                        help='b0/b2 at 256, 1 rep, 5 DDP steps')
    parser.add_argument('--ddp-worker', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--out-dir', default=None)
    args = parser.parse_args(argv)
    check_ddp_args(args)
    return args


def check_ddp_args(args):
    """Refuse DDP settings that cannot give the documented comparison."""
    if args.ddp_steps < 1 or args.ddp_warmup < 0:
        raise ValueError(f'--ddp-steps must be >= 1 and --ddp-warmup >= 0, '
                         f'got {args.ddp_steps} and {args.ddp_warmup}')
    if args.ddp_total_threads < 2 or args.ddp_total_threads % 2:
        raise ValueError('--ddp-total-threads must be an even number >= 2 '
                         '(1 process gets them all, 2 processes half each),'
                         f' got {args.ddp_total_threads}')


def main(argv=None):
    args = parse_args(argv)
    if args.ddp_worker:
        return ddp_worker(args)
    set_threads(args.threads)
    device = resolve_device(args.device)
    if args.quick:
        args.backbones, args.crops = args.backbones[:2], args.crops[:1]
        args.line_budget_s = min(args.line_budget_s, 60)
        args.reps, args.ddp_steps = 1, 5
    torch.manual_seed(0)
    lines, skipped = [], []
    start = time.perf_counter()
    todo = sorted(((b, c) for b in args.backbones for c in args.crops),
                  key=lambda bc: COST[bc[0]] * bc[1]**2)
    for backbone, crop in todo:
        if lines:  # predict from the first (cheapest) line
            ref = lines[0]
            est = ref['step_s'] * COST[backbone] / COST[ref['bb']] * (
                crop / ref['crop'])**2
            left = args.budget_s - (time.perf_counter() - start)
            if est > min(args.line_budget_s, left):
                skipped.append(f'MiT-{backbone.upper()} {crop}² (predicted '
                               f'{est:.0f} s/step)')
                continue
        line = step_line(backbone, crop, args.batch_size, args.reps,
                         device, args.amp, args.line_budget_s)
        line['bb'] = backbone
        print(json.dumps(line))
        lines.append(line)
    base = lines[0]['step_s']
    for line in lines:
        line['relative_to_first'] = round(line['step_s'] / base, 2)

    ddp = None
    if not args.no_ddp and not str(device).startswith('cuda'):
        one, two = ddp_run(1, args), ddp_run(2, args)
        one_1t = ddp_run(1, args, threads=two['threads_per_process'])
        ddp = dict(one_process=one, two_processes=two,
                   one_process_same_threads_per_process=one_1t,
                   throughput_ratio=round(two['samples_per_s'] /
                                          one['samples_per_s'], 3),
                   scaling_efficiency=round(two['samples_per_s'] /
                                            one_1t['samples_per_s'], 3),
                   total_threads=args.ddp_total_threads,
                   timed_steps=args.ddp_steps, warmup_steps=args.ddp_warmup,
                   backbone=f'MiT-{args.ddp_backbone.upper()}',
                   crop='config (128x256)', batch_per_process=args.batch_size)

    result = dict(bench='scaling', device=device, amp=bool(args.amp),
                  lines=lines, skipped=skipped, ddp=ddp,
                  machine=machine_info(device))
    header = ['encoder', 'crop', 'params (M)', 'step (s)', 'samples/s',
              'x first line', 'reps']
    rows = [[ln['backbone'], f'{ln["crop"]}²', ln['student_params_m'],
             f'{ln["step_s"]:.3f}', f'{ln["samples_per_s"]:.3g}',
             ln['relative_to_first'], ln['reps'] or 'one step*']
            for ln in lines]
    if 'cuda_max_allocated_mb' in lines[0]:
        header.append('CUDA max alloc (GiB)')
        for row, ln in zip(rows, lines):
            row.append(f'{ln["cuda_max_allocated_mb"] / 1024:.2f}')
    md = [f'# Scaling: MIC + dual-branch step (batch {args.batch_size}, '
          f'{result["machine"]["device"]}{", AMP" if args.amp else ""})', '']
    md += md_table(header, rows)
    if any(ln['reps'] == 0 for ln in lines):
        md.append('\n\\* one step including warm-up: over the line budget.')
    if skipped:
        md.append(f'\nSkipped (time budget): {", ".join(skipped)}.')
    if ddp:
        md += ['', f'DDP ({ddp["backbone"]}, {ddp["crop"]}, batch '
               f'{args.batch_size}/process, gloo, '
               'MMSeparateDistributedDataParallel):', '']
        md += md_table(['processes', 'threads/process', 'timed steps',
                        'median step (s)', 'samples/s', 'weights in sync'],
                       [[d['world_size'], d['threads_per_process'],
                         d['timed_steps'], d['step_s'], d['samples_per_s'],
                         d['weights_in_sync']] for d in (one, two, one_1t)])
        md += ['', f'**2-process / 1-process throughput = '
               f'{ddp["throughput_ratio"]:.2f}x** at the same total threads '
               f'({args.ddp_total_threads}), '
               f'{ddp["scaling_efficiency"]:.2f}x against 1 process with '
               f'{one_1t["threads_per_process"]} thread, on '
               f'{result["machine"].get("usable_cores")} usable cores (load '
               f'{result["machine"].get("load_avg_1m")}).']
    write_results('scaling', result, md, args.out_dir)
    return result


if __name__ == '__main__':
    main()
