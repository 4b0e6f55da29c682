"""Fault injection: what a long run survives (issue #7).

    python bench/faults.py                 # all scenarios, ~5-10 min on CPU
    python bench/faults.py --only kill     # scenarios whose name has 'kill'

Every scenario trains one of the repository's configs (MIC UDA
segmentation, diet-sampler detection, mask classification) on tiny demo data
with ``tools/train.py``'s main (forked from one pre-imported process), injects
a fault with ``FaultInjectionHook`` or by damaging files, recovers the way a
user would (``--resume``, ``tools/check_data.py``) and compares with an
uninterrupted run of the same seed. Rows marked *stock* run without the
mmplugins reliability hooks, to show what they prevent.

Columns: scenario, what was injected, outcome, ``data lost`` (complete
checkpoints lost or made unusable + trained iterations that a resume could
not reproduce bit for bit; must be 0 for every non-stock row), as expected
(non-stock rows: recovered with nothing lost; stock rows: the failure the
hooks prevent did happen).
Writes ``bench/results/faults.json`` (``rows`` and the ``provenance``
block of ``bench/_common.write_results``) and ``.md``.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tests', 'reliability'))
sys.path.insert(0, osp.join(REPO, 'tools'))

import _runs as runs  # noqa: E402
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import write_results  # noqa: E402

EXACT = [dict(type='ExactResumeHook'), dict(type='NaNGuardHook')]


def _kill(at):
    return dict(type='FaultInjectionHook', kill_after_iter=at)


def _compare(ref, resumed_runs):
    """Iterations of the interrupted+resumed run whose loss differs from
    the reference, and the largest difference."""
    diff, worst = 0, 0.0
    for run in resumed_runs:
        for k, v in run.items():
            if k in ref and ref[k] != v:
                diff += 1
                worst = max(worst, abs(ref[k] - v))
    return diff, worst


class Bench:

    def __init__(self, root):
        self.root = root
        self.data = runs.make_data(osp.join(root, 'data'))
        self._refs = {}

    def wd(self, name):
        path = osp.join(self.root, name)
        shutil.rmtree(path, ignore_errors=True)
        return path

    def cfg(self, family, length, hooks, name, **kw):
        cfg = runs.BUILDERS[family](self.data[family], length, hooks, **kw)
        return runs.write_config(cfg, osp.join(self.root, name + '.py'))

    def reference(self, family, length, hooks=EXACT, **kw):
        key = (family, length, json.dumps(hooks), json.dumps(kw))
        if key not in self._refs:
            name = f'ref_{family}_{len(self._refs)}'
            cfg = self.cfg(family, length, hooks, name, **kw)
            wd = self.wd(name)
            assert runs.train_forked(cfg, wd) == 0, runs.read_log(wd)
            self._refs[key] = (cfg, runs.losses(wd))
        return self._refs[key]

    # ----------------------------------------------------------- scenarios
    def kill_resume(self, family, length, kill, hooks=EXACT, stock=False,
                    **kw):
        ref_cfg, ref = self.reference(family, length, hooks, **kw)
        name = f'kill_{family}{"_stock" if stock else ""}'
        kcfg = self.cfg(family, length, hooks + [_kill(kill)], name, **kw)
        wd = self.wd(name)
        rc = runs.train_forked(kcfg, wd)
        latest = open(osp.join(wd, 'last_checkpoint')).read().strip()
        rc2 = runs.train_forked(ref_cfg, wd, resume=True)
        parts = runs.losses_per_run(wd)
        diff, worst = _compare(ref, parts)
        unit = 'epoch' if family == 'det' else 'iteration'
        return dict(
            injected=f'SIGKILL after iteration {kill} (checkpoint '
            f'{osp.basename(latest)}), then --resume',
            outcome=(f'kill rc={rc}, resume rc={rc2}; resumed from '
                     f'{osp.basename(latest)}; {len(parts[-1])} iterations '
                     f'retrained; {diff} of {sum(len(p) for p in parts)} '
                     f'logged losses differ from the uninterrupted run'
                     + (f' (max |d|={worst:.3g})' if diff else
                        ' (bitwise equal)')),
            data_lost=diff, ok=(rc == -9 and rc2 == 0 and
                                (diff == 0) != stock),
            unit=unit)

    def kill_during_save(self, stock=False):
        ref_cfg, ref = self.reference('cls', 6)
        hooks = EXACT + [dict(type='FaultInjectionHook',
                              kill_during_save_at_iter=4)]
        cfg = runs.cls_config(self.data['cls'], 6, hooks)
        cfg.default_hooks.checkpoint.max_keep_ckpts = 1
        if stock:
            cfg.default_hooks.checkpoint.type = 'CheckpointHook'
        name = 'save_kill' + ('_stock' if stock else '')
        path = runs.write_config(cfg, osp.join(self.root, name + '.py'))
        wd = self.wd(name)
        rc = runs.train_forked(path, wd)
        from mmplugins.engine.hooks.atomic_checkpoint_hook import \
            checkpoint_is_complete
        usable = [f for f in sorted(os.listdir(wd)) if f.endswith('.pth')
                  and not f.startswith('.')
                  and checkpoint_is_complete(osp.join(wd, f))[0]]
        rc2 = runs.train_forked(ref_cfg, wd, resume=True)
        log = runs.read_log(wd)
        parts = runs.losses_per_run(wd)
        diff, _ = _compare(ref, parts)
        lost = (0 if usable else 1) + diff
        if rc2 != 0:
            msg = [ln.strip() for ln in log.splitlines()
                   if 'AtomicCheckpointHook' in ln][-1:]
            outcome = (f'complete checkpoints left: {usable or "none"}; '
                       f'resume refused: {msg[0][:160] if msg else rc2}')
            lost = max(lost, 1)
        else:
            outcome = (f'complete checkpoints left: {usable}; resume rc=0, '
                       f'{diff} losses differ')
        return dict(
            injected='SIGKILL half-way through writing iter_4.pth '
            '(max_keep_ckpts=1)',
            outcome=f'kill rc={rc}; ' + outcome, data_lost=lost,
            ok=(lost == 0) != stock)

    def truncated_latest(self):
        ref_cfg, ref = self.reference('cls', 6)
        cfg = runs.cls_config(self.data['cls'], 6, EXACT + [_kill(5)])
        path = runs.write_config(cfg, osp.join(self.root, 'trunc.py'))
        wd = self.wd('trunc')
        runs.train_forked(path, wd)
        latest = osp.join(wd, 'iter_4.pth')
        data = open(latest, 'rb').read()
        open(latest, 'wb').write(data[:len(data) // 3])
        rc = runs.train_forked(ref_cfg, wd, resume=True)
        log = runs.read_log(wd)
        fell_back = 'resuming from' in log and 'iter_2.pth' in log
        diff, _ = _compare(ref, runs.losses_per_run(wd))
        return dict(
            injected='latest checkpoint iter_4.pth truncated to 1/3 '
            '(disk full / stock hook)',
            outcome=f'resume rc={rc}; warned and resumed from iter_2.pth: '
            f'{fell_back}; {diff} losses differ',
            data_lost=diff + (0 if rc == 0 else 1),
            ok=rc == 0 and fell_back and diff == 0)

    def nan(self, family, action):
        hooks = [dict(type='NaNGuardHook', action=action),
                 dict(type='FaultInjectionHook', nan_at_iter=3)]
        length = 6
        if family == 'seg':
            hooks = hooks[1:]  # UDASegmentor guards its own step
        path = self.cfg(family, length, hooks, f'nan_{family}_{action}')
        wd = self.wd(f'nan_{family}_{action}')
        rc = runs.train_forked(path, wd)
        log = runs.read_log(wd)
        lines = [ln for ln in log.splitlines()
                 if ln.startswith('FloatingPointError:')
                 or 'skipping this' in ln]
        import torch
        bad_ckpts = 0
        for f in os.listdir(wd):
            if f.endswith('.pth') and not f.startswith('.'):
                sd = torch.load(osp.join(wd, f), map_location='cpu',
                                weights_only=True)['state_dict']
                bad_ckpts += any(not torch.isfinite(v).all()
                                 for v in sd.values()
                                 if v.is_floating_point())
        ok = bad_ckpts == 0 and bool(lines) and (
            rc == 1 if action == 'stop' else rc == 0)
        return dict(
            injected=f'NaN inputs at iteration 3 ({action})',
            outcome=f'rc={rc}; ' + (lines[0].split(' - ')[-1][:200]
                                    if lines else 'no message') +
            f'; non-finite checkpoints: {bad_ckpts}',
            data_lost=bad_ckpts, ok=ok)

    def nan_skip_seg(self):
        """UDA (MIC + dual branch), NaN inputs at iteration 3, skip:
        checkpoints after iterations 2 and 3 must hold the same student,
        EMA teacher(s) and UDA counter."""
        import torch
        hooks = [dict(type='NaNGuardHook', action='skip'),
                 dict(type='FaultInjectionHook', nan_at_iter=3)]
        cfg = runs.seg_config(self.data['seg'], 4, hooks, ckpt_interval=1,
                              num_workers=0)
        cfg.default_hooks.checkpoint.max_keep_ckpts = 4
        path = runs.write_config(cfg, osp.join(self.root, 'nan_skip_seg.py'))
        wd = self.wd('nan_skip_seg')
        rc = runs.train_forked(path, wd)
        log = runs.read_log(wd)

        def sd(i):
            return torch.load(osp.join(wd, f'iter_{i}.pth'),
                              map_location='cpu',
                              weights_only=True)['state_dict']

        try:
            s2, s3, s4 = sd(2), sd(3), sd(4)
        except FileNotFoundError as e:
            return dict(injected='NaN inputs at iteration 3 (skip, UDA)',
                        outcome=f'rc={rc}; {e}', data_lost=1, ok=False)
        groups = dict(student='student.', teacher='teacher.',
                      mic_teacher='mic.teacher.', local_iter='local_iter')
        changed = {g: sum(not torch.equal(s2[k], s3[k]) for k in s2
                          if k.startswith(pre)) for g, pre in groups.items()}
        n = {g: sum(k.startswith(pre) for k in s2)
             for g, pre in groups.items()}
        moved_after = sum(not torch.equal(s3[k], s4[k]) for k in s3
                          if k.startswith('teacher.'))
        lost = sum(changed.values())
        skipped = runs.losses(wd, 'nan_guard_skipped')
        ok = (rc == 0 and lost == 0 and skipped.get(3) == 1
              and moved_after > 0 and n['teacher'] > 0)
        return dict(
            injected='NaN inputs at iteration 3 (skip), UDASegmentor, '
            'checkpoints after iterations 2, 3, 4',
            outcome=f'rc={rc}; tensors differing between iter_2 and iter_3: '
            + ', '.join(f'{g} {changed[g]}/{n[g]}' for g in groups)
            + f' (local_iter {int(s2["local_iter"])} -> '
            f'{int(s3["local_iter"])}); iteration 4 moved the teacher again '
            f'({moved_after} tensors); skipped: {skipped.get(4)}',
            data_lost=lost, ok=ok)

    def _torchrun(self, name, cfg, script, nproc=2, extra=()):
        import socket
        import subprocess
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        path = runs.write_config(cfg, osp.join(self.root, name + '.py'))
        out = self.wd(name)
        env = dict(os.environ, OMP_NUM_THREADS='1', MASTER_ADDR='127.0.0.1')
        proc = subprocess.run(
            [sys.executable, '-m', 'torch.distributed.run',
             '--nproc_per_node', str(nproc), '--master_port', str(port),
             script, path] + list(extra) + [out] * (not extra),
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        return proc, out

    def nan_skip_ddp(self):
        """2 gloo processes, NaN inputs at iteration 3 on rank 1 only."""
        hooks = [dict(type='NaNGuardHook', action='skip'),
                 dict(type='FaultInjectionHook', nan_at_iter=3, nan_rank=1)]
        cfg = runs.seg_config(self.data['seg'], 5, hooks, ckpt_interval=100,
                              num_workers=0)
        worker = osp.join(REPO, 'tests', 'reliability',
                          '_ddp_teacher_worker.py')
        proc, out = self._torchrun('nan_skip_ddp', cfg, worker)
        if proc.returncode != 0:
            return dict(injected='NaN inputs at iteration 3 on rank 1 of 2 '
                        '(skip)', outcome=f'rc={proc.returncode}: '
                        + proc.stderr[-200:], data_lost=1, ok=False)
        res = [json.load(open(osp.join(out, f'rank{r}.json')))
               for r in (0, 1)]
        lost, parts = 0, []
        for r, rr in enumerate(res):
            h = {e['iter']: e for e in rr['history']}
            trace = sum(h[3][k] != h[2][k]
                        for k in ('teacher', 'student', 'local_iter'))
            lost += trace
            parts.append(f'rank {r}: {rr["iters"]} iterations, skipped '
                         f'{h[5]["skipped"]}, iteration 3 changed {trace} '
                         'of student/teacher/local_iter')
        same = res[0]['history'] == res[1]['history']
        lost += 0 if same else 1
        ok = lost == 0 and all(r['iters'] == 5 for r in res)
        return dict(
            injected='NaN inputs at iteration 3 on rank 1 only (skip), '
            '2 processes (gloo), UDASegmentor',
            outcome='rc=0; ' + '; '.join(parts) + '; ranks identical '
            f'after every iteration: {same}', data_lost=lost, ok=ok)

    def nccl_on_cpu(self):
        """The config asks for nccl on a machine without CUDA; 2 processes
        with tools/train.py --launcher pytorch."""
        cfg = runs.cls_config(self.data['cls'], 4, EXACT, ckpt_interval=2)
        cfg.env_cfg.dist_cfg = dict(backend='nccl')
        name = 'nccl_cpu'
        proc, out = self._torchrun(
            name, cfg, osp.join(REPO, 'tools', 'train.py'),
            extra=['--launcher', 'pytorch', '--work-dir',
                   osp.join(self.root, name)])
        text = proc.stdout + proc.stderr
        warned = ("dist backend 'nccl' was requested but CUDA is not "
                  "available; using 'gloo' instead") in text
        logged = runs.losses(osp.join(self.root, name)) if osp.isdir(
            osp.join(self.root, name)) else {}
        trained = sorted(logged) == [1, 2, 3, 4]
        lost = 0 if proc.returncode == 0 and trained else 1
        return dict(
            injected="dist_cfg backend='nccl', no CUDA, 2 processes "
            '(tools/train.py --launcher pytorch, cls)',
            outcome=f'rc={proc.returncode}; WARNING nccl -> gloo in the '
            f'log: {warned}; iterations logged: {sorted(logged)}',
            data_lost=lost, ok=lost == 0 and warned)

    def bad_data(self, kind):
        import check_data
        from PIL import Image
        root = self.wd(f'bad_{kind}')
        shutil.copytree(self.data['seg'], root,
                        ignore=shutil.ignore_patterns('.mmplugins_cache'))
        img = osp.join(root, 'train_source_image/TRAIN_SOURCE_0001.png')
        gt = osp.join(root, 'train_source_gt/TRAIN_SOURCE_0001.png')
        cfg = runs.seg_config(root, 2, [])
        injected = kind
        if kind == 'truncated image':
            data = open(img, 'rb').read()
            open(img, 'wb').write(data[:len(data) // 2])
        elif kind == 'image without label':
            os.remove(gt)
        elif kind == 'label id out of range':
            a = np.array(Image.open(gt))
            a[5, 5] = 40
            Image.fromarray(a).save(gt)
        elif kind == 'label size mismatch':
            Image.fromarray(np.array(Image.open(gt))[:, :100]).save(gt)
        elif kind == 'empty class-stats cache':
            check_data.run(cfg, ['train'])  # writes the cache
            cache_dir = osp.join(root, '.mmplugins_cache')
            for f in os.listdir(cache_dir):
                open(osp.join(cache_dir, f), 'wb').close()
        elif kind == 'source/target class mismatch':
            from mmplugins.datasets.samsung_camera import CLASSES
            cfg.train_dataloader.dataset.target.metainfo = dict(
                classes=list(CLASSES[:11]))
        reports = check_data.run(cfg, ['train'])
        problems = [p for r in reports for p in r['problems']]
        first = problems[0][2] if problems else 'no problem found'
        expect_error = kind != 'empty class-stats cache'
        ok = bool(problems) == expect_error
        if not expect_error:
            first = 'cache unreadable -> recomputed with a warning; ' + first
        return dict(injected=injected,
                    outcome=f'check_data: {len(problems)} problem(s): '
                    f'{first[:220]}', data_lost=0, ok=ok)


def scenarios(b):
    return [
        ('kill -9 mid-run, seg (MIC)', lambda: b.kill_resume('seg', 8, 5)),
        ('kill -9 mid-run, seg, stock resume',
         lambda: b.kill_resume('seg', 8, 5, hooks=[], stock=True)),
        ('kill -9 mid-run, det (diet, epochs)',
         lambda: b.kill_resume('det', 4, 8, ckpt_interval=2)),
        ('kill -9 mid-run, cls', lambda: b.kill_resume('cls', 6, 5)),
        ('kill -9 during checkpoint write',
         lambda: b.kill_during_save()),
        ('kill -9 during checkpoint write, stock hook',
         lambda: b.kill_during_save(stock=True)),
        ('truncated latest checkpoint', b.truncated_latest),
        ('NaN loss, cls, stop', lambda: b.nan('cls', 'stop')),
        ('NaN loss, cls, skip', lambda: b.nan('cls', 'skip')),
        ('NaN loss, seg (UDASegmentor)', lambda: b.nan('seg', 'stop')),
        ('NaN skip, seg (UDASegmentor): weights and teacher unchanged',
         b.nan_skip_seg),
        ('NaN skip, 2-process DDP, NaN on one rank', b.nan_skip_ddp),
        ('nccl requested on a CPU machine', b.nccl_on_cpu),
    ] + [(f'bad data: {k}', (lambda k=k: b.bad_data(k))) for k in (
        'truncated image', 'image without label', 'label id out of range',
        'label size mismatch', 'empty class-stats cache',
        'source/target class mismatch')]


def to_markdown(rows):
    lines = ['| scenario | injected | outcome | data lost | as expected |',
             '|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {r["scenario"]} | {r["injected"]} | '
                     f'{r["outcome"].replace("|", "/")} | {r["data_lost"]} '
                     f'| {"yes" if r["ok"] else "NO"} |')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--only', default=None,
                   help='run the scenarios whose name contains this')
    p.add_argument('--out', default=osp.join(REPO, 'bench', 'results'))
    p.add_argument('--keep', action='store_true',
                   help='keep the work folders (printed)')
    args = p.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    runs.prewarm()
    root = tempfile.mkdtemp(prefix='mmplugins_faults_')
    b = Bench(root)
    rows = []
    for name, fn in scenarios(b):
        if args.only and args.only not in name:
            continue
        t = time.time()
        try:
            row = fn()
        except Exception as e:  # noqa: BLE001 - a failed scenario is a row
            row = dict(injected='?', outcome=f'bench error: {e!r}'[:300],
                       data_lost='?', ok=False)
        row = dict(scenario=name, **row, seconds=round(time.time() - t, 1))
        row.pop('unit', None)
        rows.append(row)
        print(f'{name:45s} lost={row["data_lost"]} '
              f'{"ok" if row["ok"] else "FAIL"}  {row["outcome"][:120]}',
              flush=True)
    md = to_markdown(rows)
    if args.only:
        print('\n' + md)
    else:  # JSON = dict(rows=[...], provenance=...) (bench/_common.py)
        write_results('faults', dict(rows=rows),
                      ['# Fault injection (bench/faults.py)', '', md],
                      args.out)
    if args.keep:
        print('work folders in', root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    real_fail = [r for r in rows if not r['ok']]
    return 1 if real_fail else 0


if __name__ == '__main__':
    sys.exit(main())
