"""``make bench``: run every bench at modest sizes and summarise the figures.

Each bench runs in its own process (fresh memory figures, one failure does
not stop the others) with sizes that keep the whole suite under ~15 min on
a 2-core CPU, and writes its JSON + Markdown into ``--out-dir``
(``bench/results/latest/``; the hand-curated results in ``bench/results/``
stay untouched). The figures of issue #6 are then collected into
``bench/results/summary.{json,md}``: one row per figure, the ratio measured
in the same run, its goal and whether it is met. GPU figures recorded with
the same scripts on a lent GPU (``bench/results/gpu/*.json``) are listed
below as recorded, with their device.

Example::

    python bench/run_all.py                 # the suite (make bench)
    python bench/run_all.py --only uda_step scaling
    python bench/run_all.py --device cuda   # the same suite on a GPU
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import (RESULTS, ROOT, machine_info, md_table,  # noqa: E402
                     provenance)


def suite(device, quick=False):
    """name -> (script, args, json file written, timeout s).

    Sizes are chosen for a 2-core CPU; ``device`` 'cuda' runs the GPU
    sizes of the issue (MiT-B5, 512x512, AMP) for the model figures.
    """
    cuda = device.startswith('cuda')
    step = (['--backbone', 'b5', '--crop', '512', '512', '--amp']
            if cuda else ['--reps', '2' if quick else '3', '--warmup', '1',
                          '--threads', '1'])
    scaling = (['--amp', '--no-ddp'] if cuda else
               ['--batch-size', '1', '--reps', '2', '--threads', '1',
                '--line-budget-s',
                '60' if quick else '150', '--budget-s', '360',
                '--ddp-steps', '5' if quick else '20', '--ddp-warmup',
                '2', '--ddp-total-threads', '2'])
    if quick:
        scaling += ['--backbones', 'b0', 'b2', '--crops', '256']
    slide = ['--repeats', '3', '--batch-sizes', '4', '0']
    if cuda:
        slide += ['--height', '1024', '--width', '2048', '--crop', '512',
                  '--stride', '341', '--device', 'cuda', '--no-tf32']
    return {
        'uda_step': ('uda_step_bench.py', step + ['--device', device],
                     'uda_step.json', 600),
        # one intra-op thread for the model step, as uda_step: with 2
        # threads on a CPU other jobs share, the step collapses (21 s vs
        # ~1 s here) and the loader / model ratio is meaningless
        'data_pipeline': ('data_pipeline_bench.py',
                          ['--batches', '8' if quick else '20', '--reps',
                           '2', '--threads', '1'], 'data_pipeline.json',
                          300),
        'slide_inference': ('slide_inference_bench.py', slide,
                            'slide_inference.json', 240),
        'class_stats': ('class_stats_bench.py',
                        ['--num-maps', '200', '--nproc', '2', '--repeats',
                         '2'], 'class_stats.json', 240),
        'diet_sampler': ('diet_sampler_bench.py', ['--repeat', '2'],
                         'diet_sampler.json', 180),
        'transforms': ('transforms_bench.py', ['--samples', '10'],
                       'transforms.json', 120),
        'scaling': ('scaling_bench.py', scaling + ['--device', device],
                    'scaling.json', 600),
    }


def run_one(name, script, args, out_dir, timeout):
    """Run one bench script; returns (status, seconds, stderr tail)."""
    cmd = [sys.executable, osp.join(ROOT, 'bench', script), *args,
           '--out-dir', out_dir]
    print(f'[run_all] {name}: {" ".join(cmd[1:])}', flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        status = ('ok' if proc.returncode == 0 else
                  f'failed ({proc.returncode})')
        tail = proc.stderr[-1500:] if proc.returncode else ''
    except subprocess.TimeoutExpired:
        status, tail = f'timeout ({timeout} s)', ''
    elapsed = time.perf_counter() - start
    print(f'[run_all] {name}: {status} in {elapsed:.0f} s', flush=True)
    if tail:
        print(tail, file=sys.stderr)
    return status, elapsed, tail


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _yes(flag):
    return {True: 'yes', False: '**no**', None: '-'}[flag]


def _with_opt(r):
    """The step vs its passes plus the optimizer step (timed alone)."""
    opt = r.get('other_pieces_s', {}).get('optimizer step')
    if opt is None:
        return ''
    return (f'step / (passes + optimizer step {opt * 1e3:.0f} ms) = '
            f'{r["step_s"] / (r["pass_sum_s"] + opt):.3f}x')


def figures(res, device_label):
    """Summary rows ``[figure, measured, goal, met, context]``."""
    rows = []
    r = res.get('uda_step')
    if r:
        rows.append([
            '1. UDA step / sum of its passes', f'{r["overhead_ratio"]:.3f}x',
            '<= 1.10x', _yes(r['goal_met']),
            f'{r["backbone"]} {r["crop"][0]}x{r["crop"][1]} batch '
            f'{r["batch_size"]}: step {r["step_s"]:.3f} s, passes '
            f'{r["pass_sum_s"]:.3f} s; {_with_opt(r)}'])
        if r.get('memory'):
            m = r['memory']
            rows.append([
                '1. peak memory MIC / source-only', f'{m["peak_ratio"]:.2f}x',
                'report', '-',
                f'{m["mic"]["kind"]}: {m["mic"]["peak_mb"]:.0f} vs '
                f'{m["source_only"]["peak_mb"]:.0f} MiB (step increment '
                f'{m["mic"]["step_mb"]:.0f} vs '
                f'{m["source_only"]["step_mb"]:.0f} MiB)'])
    r = res.get('data_pipeline')
    if r:
        rows.append([
            '2. dataloader / model samples/s', f'{r["ratio"]:.1f}x', '>= 2x',
            _yes(r['goal_met']),
            f'{r["num_workers"]} workers {r["loader_samples_per_s"]:.2f}/s '
            f'vs step {r["model_samples_per_s"]:.3f}/s '
            f'({r["scale"]} scale, {r["main_process_ms_per_sample"]:.0f} '
            'ms/sample in one process)'])
    r = res.get('slide_inference')
    if r:
        best = max(r['batched'], key=lambda b: b['speedup'])
        diff = max(b['max_abs_diff'] for b in r['batched'])
        rows.append([
            '3. batched / sequential slide inference',
            f'{best["speedup"]:.2f}x', '>= 1.5x',
            _yes(best['speedup'] >= 1.5),
            f'batch_size {best["batch_size"]}, {r["crops"]} crops '
            f'{r["crop_size"][0]}x{r["crop_size"][1]} of a '
            f'{r["image_size"][0]}x{r["image_size"][1]} image, max abs diff '
            f'{diff:.1e}'])
    r = res.get('class_stats')
    if r:
        rows.append([
            '4. class statistics, maps/s at 512x1024',
            f'{r["parallel_maps_per_s"]:.0f}/s', '>= 300/s (2 cores)',
            _yes(r['goal_met']),
            f'{r["nproc"]} processes, serial {r["serial_maps_per_s"]:.0f}/s,'
            f' {r["usable_cores"]} usable cores'])
    r = res.get('diet_sampler')
    if r:
        rows.append([
            '4. sampler index build, 1M items',
            f'{r["index_build_s"]:.3f} s', '< 1 s', _yes(r['meets_goal']),
            f'{r["num_images"]:,} images, {r["num_instances"]:,} '
            'instances'])
    r = res.get('scaling')
    if r:
        for ln in r['lines']:
            rows.append([
                f'5. step {ln["backbone"]} {ln["crop"]}²',
                f'{ln["step_s"]:.3f} s', 'report', '-',
                f'batch {ln["batch_size"]}, {ln["student_params_m"]} M '
                'params' + ('' if ln['reps'] else ', one step incl. warm-up')
            ])
        if r.get('skipped'):
            rows.append(['5. skipped (time budget)', '-', '-', '-',
                         ', '.join(r['skipped'])])
        if r.get('ddp'):
            d = r['ddp']
            rows.append([
                '5. DDP 2-process / 1-process throughput',
                f'{d["throughput_ratio"]:.2f}x', 'report', '-',
                f'{d["one_process"]["samples_per_s"]:.3f} vs '
                f'{d["two_processes"]["samples_per_s"]:.3f} samples/s over '
                f'{d["two_processes"].get("timed_steps", "?")} timed steps,'
                f' 1x{d["one_process"]["threads_per_process"]} vs '
                f'2x{d["two_processes"]["threads_per_process"]} threads, '
                f'gloo, weights in sync: '
                f'{d["two_processes"]["weights_in_sync"]}'])
            if d.get('scaling_efficiency'):
                one_1t = d['one_process_same_threads_per_process']
                rows.append([
                    '5. DDP 2 processes / 1 process, 1 thread each',
                    f'{d["scaling_efficiency"]:.2f}x', 'report', '-',
                    f'{one_1t["samples_per_s"]:.3f} vs '
                    f'{d["two_processes"]["samples_per_s"]:.3f} samples/s '
                    '(scaling efficiency, ideal 2x)'])
    return rows


def gpu_rows():
    """Rows of GPU results recorded earlier with the same scripts."""
    rows = []
    gpu_dir = osp.join(RESULTS, 'gpu')
    step = _load(osp.join(gpu_dir, 'uda_step_h100.json'))
    if step:
        dev = step['machine']['device']
        rows.append([
            '1. UDA step / sum of its passes',
            f'{step["overhead_ratio"]:.3f}x',
            '<= 1.10x', _yes(step['goal_met']),
            f'{dev}, {step["backbone"]} {step["crop"][0]}² AMP batch '
            f'{step["batch_size"]}; {_with_opt(step)}'])
        mem = step.get('memory') or {}
        peak = mem.get('mic', {}).get('peak_mb')
        rows.append([
            'MIC step time', f'{step["step_s"]:.3f} s', '<= 0.35 s',
            _yes(step['step_s'] <= 0.35),
            f'{dev}; source-only step {step["source_only_step_s"]:.3f} s, '
            'optimizer step alone '
            f'{step["other_pieces_s"].get("optimizer step", 0):.3f} s'])
        if peak:
            rows.append([
                'MIC CUDA max allocated', f'{peak / 1024:.2f} GiB',
                '<= 9 GB', _yes(peak * 2**20 <= 9e9),
                f'source-only {mem["source_only"]["peak_mb"] / 1024:.2f} '
                f'GiB (x{mem["peak_ratio"]:.2f})'])
    scal = _load(osp.join(gpu_dir, 'scaling_h100.json'))
    if scal:
        for ln in scal['lines']:
            rows.append([f'5. step {ln["backbone"]} {ln["crop"]}²',
                         f'{ln["step_s"]:.3f} s', 'report', '-',
                         f'{scal["machine"]["device"]}, AMP, batch '
                         f'{ln["batch_size"]}'])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', default=osp.join(RESULTS, 'latest'))
    parser.add_argument('--summary-dir', default=RESULTS)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--only', nargs='+', help='bench names to run')
    parser.add_argument('--quick', action='store_true',
                        help='smaller sizes (a few minutes)')
    parser.add_argument('--summary-only', action='store_true',
                        help='run nothing: rebuild the summary from the '
                        'JSON files already in --out-dir')
    parser.add_argument('--timeout-scale', type=float, default=1.0,
                        help='multiply every bench timeout (a loaded or '
                        'slower machine)')
    args = parser.parse_args(argv)
    benches = suite(args.device, args.quick)
    unknown = set(args.only or []) - set(benches)
    if unknown:
        raise KeyError(f'unknown bench names {sorted(unknown)}; choose '
                       f'from {sorted(benches)}')
    os.makedirs(args.out_dir, exist_ok=True)
    start = time.perf_counter()
    runs, results = {}, {}
    for name, (script, bench_args, out_json, timeout) in benches.items():
        if args.summary_only or (args.only and name not in args.only):
            # keep the figures of an earlier full run in the summary
            prev = _load(osp.join(args.out_dir, out_json))
            if prev:
                results[name] = prev
                runs[name] = dict(status='earlier run', seconds=0,
                                  command=f'python bench/{script} '
                                  + ' '.join(bench_args))
            continue
        status, secs, _ = run_one(name, script, bench_args, args.out_dir,
                                  timeout * args.timeout_scale)
        runs[name] = dict(status=status, seconds=round(secs, 1),
                          command=f'python bench/{script} '
                          + ' '.join(bench_args))
        if status == 'ok':
            results[name] = _load(osp.join(args.out_dir, out_json))
    total = time.perf_counter() - start
    machine = machine_info(args.device)
    rows = figures(results, machine['device'])
    summary = dict(total_s=round(total, 1), device=args.device, runs=runs,
                   rows=rows, machine=machine, gpu_rows=gpu_rows(),
                   summary_only=bool(args.summary_only),
                   provenance=provenance())
    with open(osp.join(args.summary_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    header = ['figure', 'measured', 'goal', 'met', 'context']
    md = ['# mmplugins benchmarks (issue #6)', '',
          f'`python bench/run_all.py` (= `make bench`) on {machine["device"]},'
          f' {machine.get("usable_cores")} usable cores, load average '
          f'{machine.get("load_avg_1m")} at the end, torch '
          f'{machine.get("torch")}; '
          + ('summary rebuilt from the per-bench JSON files'
             if args.summary_only else f'total {total / 60:.1f} min')
          + '. Ratios are measured within one run of each bench.', '']
    md += md_table(header, rows)
    failed = {k: v['status'] for k, v in runs.items()
              if v['status'] not in ('ok', 'earlier run')}
    if failed:
        md += ['', 'Not measured: ' + ', '.join(f'{k} ({v})'
                                               for k, v in failed.items())]
    if summary['gpu_rows']:
        md += ['', 'Recorded on a lent GPU with the same scripts (see '
               '`bench/results/gpu/`):', '']
        md += md_table(header, summary['gpu_rows'])
    md += ['', 'Per-bench tables: ' + ', '.join(
        f'`{osp.relpath(args.out_dir, ROOT)}/{v[2][:-5]}.md`'
        for k, v in benches.items() if k in results) + '.']
    with open(osp.join(args.summary_dir, 'summary.md'), 'w') as f:
        f.write('\n'.join(md) + '\n')
    print('\n'.join(md))
    return summary


if __name__ == '__main__':
    main()
