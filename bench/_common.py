"""Helpers shared by the bench scripts: timing, memory, machine, output.

Every bench measures the figures it compares *in the same run* (the
development machine is a shared CPU, so only ratios taken side by side
mean anything) and writes ``<out_dir>/<name>.json`` plus a Markdown table
``<out_dir>/<name>.md``. The scripts run unchanged on CPU and CUDA.
"""
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(ROOT, 'bench', 'results')
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def sync(device: str) -> None:
    """Wait for queued CUDA work (no-op on CPU) so wall times are real."""
    if str(device).startswith('cuda'):
        import torch
        torch.cuda.synchronize()


def time_fn(fn: Callable, device: str = 'cpu') -> float:
    """Wall time of one call of ``fn`` in seconds (synchronised)."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def interleaved_medians(fns: Dict[str, Callable], reps: int,
                        warmup: int = 1,
                        device: str = 'cpu') -> Dict[str, dict]:
    """Median wall time of each of ``fns``, timed round-robin.

    ``warmup`` untimed calls of each first (allocator, lazy inits, one-off
    caches); then ``reps`` rounds that call every function once. On a
    shared machine a load spike then hits every variant alike instead of
    biasing whichever ran last.

    Returns:
        dict: name -> ``dict(median_s, times_s)``.
    """
    if reps < 1:
        raise ValueError(f'reps must be >= 1, but got reps={reps}')
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(time_fn(fn, device))
    return {
        name: dict(median_s=statistics.median(t),
                   times_s=[round(v, 5) for v in t])
        for name, t in times.items()
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != 'darwin' else kb / 2**20


def current_rss_mb() -> float:
    """Current resident set size in MiB (``/proc``; 0 where unavailable)."""
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE') / 2**20
    except (OSError, ValueError):
        return 0.0


class RSSSampler:
    """Highest current RSS (MiB) seen while the ``with`` block runs.

    ``ru_maxrss`` is the peak over the process's whole life (imports and
    model building included), so it cannot isolate a training step; a
    thread polling ``/proc/self/statm`` every ``interval`` s can (torch
    kernels release the GIL, so the poller runs during them).
    """

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = None

    def _poll(self):
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, current_rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self):
        import threading
        self.peak_mb = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())
        return False


def reset_peak_memory(device: str) -> None:
    if str(device).startswith('cuda'):
        import torch
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str) -> float:
    """CUDA max allocated on a GPU, else this process's peak RSS (MiB)."""
    if str(device).startswith('cuda'):
        import torch
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mb()


def machine_info(device: str = 'cpu') -> dict:
    """What the figures were measured on (device name, threads, load)."""
    info = dict(python=platform.python_version(),
                processor=platform.processor() or platform.machine(),
                cpus=os.cpu_count(), date=time.strftime('%Y-%m-%d %H:%M:%S'))
    try:
        info['usable_cores'] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        info['load_avg_1m'] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        import torch
        info['torch'] = torch.__version__
        info['torch_threads'] = torch.get_num_threads()
        if str(device).startswith('cuda'):
            info['device'] = torch.cuda.get_device_name()
        else:
            info['device'] = f'cpu ({info["processor"]})'
    except ImportError:
        info['device'] = str(device)
    return info


def resolve_device(device: Optional[str]) -> str:
    """``'auto'``/None -> ``'cuda'`` when available, else ``'cpu'``."""
    if device in (None, 'auto'):
        import torch
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return device


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> List[str]:
    """Markdown table lines."""
    lines = ['| ' + ' | '.join(str(h) for h in header) + ' |',
             '|' + '---|' * len(header)]
    for row in rows:
        lines.append('| ' + ' | '.join(_cell(v) for v in row) + ' |')
    return lines


def _cell(v) -> str:
    if isinstance(v, float):
        return f'{v:.3g}' if abs(v) < 100 else f'{v:.0f}'
    return str(v)


def provenance() -> dict:
    """Where a result comes from: the commit (and whether the tree had
    uncommitted changes), the exact command line, the machine, the package
    versions and the date."""
    def git(*args):
        try:
            return subprocess.run(['git', *args], cwd=ROOT, check=True,
                                  capture_output=True,
                                  text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    versions = {}
    for pkg in ('torch', 'mmengine', 'mmcv', 'mmseg', 'mmdet', 'mmpretrain',
                'kornia', 'numpy'):
        try:
            versions[pkg] = __import__(pkg).__version__
        except Exception:  # not installed / broken: say so, do not fail
            versions[pkg] = None
    status = git('status', '--porcelain', '--untracked-files=no')
    device = 'cpu'
    try:
        import torch
        if torch.cuda.is_available():
            device = 'cuda'
    except ImportError:
        pass
    return dict(commit=git('rev-parse', 'HEAD'),
                dirty=None if status is None else bool(status),
                command=' '.join(['python'] + sys.argv),
                machine=machine_info(device), packages=versions,
                date=time.strftime('%Y-%m-%dT%H:%M:%S%z'))


def write_results(name: str, result: dict, md_lines: Sequence[str],
                  out_dir: Optional[str] = None) -> str:
    """Write ``<out_dir>/<name>.json`` and ``.md``; print the Markdown.

    The JSON gets a ``provenance`` block (:func:`provenance`) unless the
    result carries one already."""
    out_dir = out_dir or RESULTS
    os.makedirs(out_dir, exist_ok=True)
    result = dict(result)
    result.setdefault('provenance', provenance())
    path = osp.join(out_dir, f'{name}.json')
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
    text = '\n'.join(md_lines) + '\n'
    with open(osp.join(out_dir, f'{name}.md'), 'w') as f:
        f.write(text)
    print(text)
    return path


def run_json_subprocess(args: Sequence[str], timeout: float = 600,
                        env: Optional[dict] = None) -> dict:
    """Run ``python args...`` and parse the last stdout line as JSON.

    Used where a figure needs a fresh process (peak RSS of one variant).
    ``$MMPLUGINS_BENCH_LAUNCHER`` (a Python script that sets up imports and
    runs the script it is given) is put in front when set, for machines
    without the full OpenMMLab stack. Raises ``RuntimeError`` with the
    child's stderr tail.
    """
    launcher = os.environ.get('MMPLUGINS_BENCH_LAUNCHER')
    prefix = [launcher] if launcher else []
    proc = subprocess.run([sys.executable, *prefix, *args],
                          capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, **(env or {})))
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(args)} failed (rc '
                           f'{proc.returncode}):\n{proc.stderr[-3000:]}')
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if not lines:
        raise RuntimeError(f'{" ".join(args)} printed no JSON line:\n'
                           f'{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}')
    return json.loads(lines[-1])


def set_threads(threads: Optional[int]) -> None:
    """Torch intra-op threads (None = torch's default)."""
    if threads:
        import torch
        torch.set_num_threads(threads)


def check_seeds(seeds: Sequence[int], prog: str) -> List[int]:
    """``--seeds`` of a multi-seed bench: at least one, none repeated.

    Raises ``SystemExit`` naming ``prog`` and the offending seeds (the
    message argparse users expect); returns the seeds as a list, in the
    order given."""
    seeds = list(seeds or [])
    if not seeds:
        raise SystemExit(f'{prog}: --seeds needs at least one seed')
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise SystemExit(f'{prog}: --seeds repeats {dup}; each seed is one '
                         'run (its own work dir), give each once')
    return seeds


def mean_std(values: Sequence[float]) -> dict:
    """``dict(values, mean, std)`` of per-seed values; ``std`` is the sample
    standard deviation (n - 1), None for a single value."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('mean_std needs at least one value')
    return dict(values=values, mean=statistics.mean(values),
                std=statistics.stdev(values) if len(values) > 1 else None)


def fmt_pm(stat: dict, digits: int = 2, signed: bool = False) -> str:
    """'mean ± std' of a :func:`mean_std` dict (just the mean for one)."""
    sign = '+' if signed else ''
    text = f'{stat["mean"]:{sign}.{digits}f}'
    if stat.get('std') is not None:
        text += f' ± {stat["std"]:.{digits}f}'
    return text
