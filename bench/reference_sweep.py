"""Sweep the papers' own configs through the reference-config converter.

    python bench/reference_sweep.py --ref DAFormer=PATH --ref HRDA=PATH \
        --ref MIC=PATH/seg [--ids MIC=80,81] [--no-build] \
        [--out-dir bench/results]

For every reference repository (a checkout of lhoyer/DAFormer, lhoyer/HRDA
or lhoyer/MIC's ``seg/`` folder; nothing of it is copied here) the sweep
takes the configs the papers were run with:

* every paper id of the repo's ``experiments.py`` (DAFormer 1-8, HRDA 40-44
  and 49, MIC 80-85 by default), generated with the repo's own
  ``generate_experiment_cfgs`` -- it imports mmcv 1.x's ``Config``, which a
  two-line shim maps onto mmengine's -- and written as the reference's
  launcher writes them (``name``, ``work_dir``, ``git_rev``, ``_base_``
  pointing into the repo's ``configs/``);
* every predefined config under the repo's ``configs/{daformer,hrda,mic}``.

Each one is converted (``mmplugins.conversion.convert_file``), the output is
loaded and pre-flighted as ``tools/train.py`` does (``setup_toolbox``: scope,
registered types), and its model is built (once per distinct model dict:
the configs of one id differ mostly by seed). The results file counts, per
repo and id: converted / passing pre-flight / building, and every reason a
config stopped (refused keys are grouped by key). A crash of the converter
(anything but its own ``ConversionError``) is counted as such.
"""
import argparse
import collections
import contextlib
import hashlib
import importlib.util
import json
import os
import os.path as osp
import re
import sys
import tempfile
import time
import traceback
import types

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
for p in (_ROOT, osp.join(_ROOT, 'tools'), osp.dirname(osp.abspath(__file__))):
    if p not in sys.path:
        sys.path.insert(0, p)

#: paper ids of each repo's experiments.py (the tables of the papers)
PAPER_IDS = {
    'DAFormer': list(range(1, 9)),
    'HRDA': [40, 41, 42, 43, 44, 49],
    'MIC': [80, 81, 82, 83, 84, 85],
}
PREDEFINED_DIRS = ('daformer', 'hrda', 'mic')


@contextlib.contextmanager
def _mmcv1_config_shim():
    """``from mmcv import Config`` (mmcv 1.x) served by mmengine's Config."""
    from mmengine.config import Config
    saved = sys.modules.get('mmcv')
    shim = types.ModuleType('mmcv')
    shim.Config = Config
    sys.modules['mmcv'] = shim
    try:
        yield
    finally:
        if saved is not None:
            sys.modules['mmcv'] = saved
        else:
            sys.modules.pop('mmcv', None)


def generate(repo_name, repo_root, ids, out_dir):
    """Write the configs of ``ids`` as the reference's launcher does.

    Returns ``[(id, path)]``; an id whose generation raises is returned as
    ``(id, Exception)``.
    """
    spec = importlib.util.spec_from_file_location(
        f'_ref_experiments_{repo_name}', osp.join(repo_root, 'experiments.py'))
    mod = importlib.util.module_from_spec(spec)
    cwd = os.getcwd()
    out = []
    with _mmcv1_config_shim():
        os.chdir(repo_root)  # experiments.py reads configs/ relative to cwd
        try:
            spec.loader.exec_module(mod)
            for exp_id in ids:
                try:
                    cfgs = mod.generate_experiment_cfgs(exp_id)
                except Exception as e:  # noqa: BLE001 (reported)
                    out.append((exp_id, e))
                    continue
                for i, cfg in enumerate(cfgs):
                    cfg = dict(cfg)
                    name = f"{cfg['name']}_{i:03d}"
                    cfg['name'] = name
                    cfg['work_dir'] = osp.join('work_dirs', f'exp{exp_id}',
                                               name)
                    cfg['git_rev'] = '0' * 40
                    cfg['_base_'] = [osp.join(repo_root, 'configs', b)
                                     for b in cfg['_base_']]
                    path = osp.join(out_dir, repo_name, f'exp{exp_id}',
                                    name + '.py')
                    os.makedirs(osp.dirname(path), exist_ok=True)
                    with open(path, 'w') as f:
                        for k, v in cfg.items():
                            f.write(f'{k} = {_py(v)}\n')
                    out.append((exp_id, path))
        finally:
            os.chdir(cwd)
    return out


def _py(v):
    """repr() whose output loads again (inf -> float('inf'))."""
    if isinstance(v, float) and (v != v or v in (float('inf'),
                                                 float('-inf'))):
        return f'float({str(v)!r})'
    if isinstance(v, dict):
        return '{' + ', '.join(f'{k!r}: {_py(x)}' for k, x in v.items()) + '}'
    if isinstance(v, (list, tuple)):
        inner = ', '.join(_py(x) for x in v)
        if isinstance(v, tuple):
            return '(' + inner + (',' if len(v) == 1 else '') + ')'
        return '[' + inner + ']'
    return repr(v)


def predefined(repo_root):
    out = []
    for d in PREDEFINED_DIRS:
        folder = osp.join(repo_root, 'configs', d)
        if osp.isdir(folder):
            out += [(f'configs/{d}', osp.join(folder, f))
                    for f in sorted(os.listdir(folder)) if f.endswith('.py')]
    return out


def _reason_keys(message):
    """The refused key paths of a ConversionError message, e.g.
    ``uda.type='AdvSeg' has no equivalent (...)`` -> ``uda.type='AdvSeg'``."""
    keys = []
    for line in message.splitlines()[1:]:
        m = re.match(r'\s*(\S+?=.*?) has no equivalent', line)
        keys.append(m.group(1) if m else line.strip())
    return keys or [message.splitlines()[0][:200]]


#: what a config's row is, from the names experiments.py gives it
#: (name_dataset, name_encoder, name_decoder; predefined files: '?')
ROW_NAMES = (('benchmark', 'name_dataset'), ('backbone', 'name_encoder'),
             ('head', 'name_decoder'))


def _row_names(src):
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(src)
    except Exception:  # noqa: BLE001 (the converter reports the load)
        return {k: '?' for k, _ in ROW_NAMES}
    return {k: str(cfg.get(key, '?')) for k, key in ROW_NAMES}


def breakdown(results):
    """(kind, name) -> Counter(total, built) over the mission's configs
    (AdvSeg / MinEnt left out)."""
    out = collections.OrderedDict()
    for _, _, res in results:
        b = blocker(res)
        if b is not None and b[0] == OUTSIDE_GOAL[0]:
            continue
        for kind, _ in ROW_NAMES:
            c = out.setdefault((kind, res.get(kind, '?')),
                               collections.Counter())
            c['total'] += 1
            c['built'] += b is None
    return out


def check_one(src, dst, built, build=True):
    """Convert, pre-flight and build one config; returns a result dict."""
    from mmplugins.conversion import ConversionError, convert_file
    res = dict(src=src, stage='converted', **_row_names(src))
    try:
        conv = convert_file(src, dst)
    except ConversionError as e:
        res.update(stage='refused', reasons=_reason_keys(str(e)))
        return res
    except Exception as e:  # noqa: BLE001 (a converter crash is a finding)
        res.update(stage='crash',
                   reasons=[f'{type(e).__name__}: {e}'],
                   traceback=traceback.format_exc(limit=4))
        return res
    res['ignored'] = conv.ignored
    try:
        from _toolbox import load_config, setup_toolbox
        cfg = load_config(dst)
        setup_toolbox(cfg)
    except Exception as e:  # noqa: BLE001
        msg = re.sub(r' in \S+\.py', '', str(e).split(': it is')[0])
        res.update(stage='converted', reasons=[f'pre-flight: {msg}'])
        return res
    res['stage'] = 'preflight'
    if not build:
        return res
    key = hashlib.sha1(repr(cfg.model.to_dict()).encode()).hexdigest()
    if key not in built:
        built[key] = _build(cfg)
    err = built[key]
    if err:
        res['reasons'] = [f'build: {err}']
        return res
    res['stage'] = 'built'
    return res


def _build(cfg):
    import torch
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    scope = cfg.get('default_scope', 'mmseg')
    model_cfg = cfg.model.to_dict()
    # the weights a reference config names are not downloaded here: build
    # the architecture without them (init_cfg is checked by its own tests)
    _strip_pretrained(model_cfg)
    try:
        with DefaultScope.overwrite_default_scope(scope), torch.no_grad():
            model = MODELS.build(model_cfg)
            model.init_weights()
        del model
        return None
    except Exception as e:  # noqa: BLE001
        return f'{type(e).__name__}: {str(e)[:300]}'


def _strip_pretrained(node):
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for v in node.values():
            _strip_pretrained(v)
    elif isinstance(node, list):
        for v in node:
            _strip_pretrained(v)


#: a refused config's blocker, by the first matching rule (in this order)
BLOCKERS = (
    ('out of scope (AdvSeg / MinEnt)', r"^uda\.type='(AdvSeg|MinEnt)'"),
    ('new dataset', r"\.type='(\w+Dataset)'"),
    ('new backbone', r"^model\.backbone\.type='(\w+)'"),
    ('new head', r"^model\.decode_head\.(?:type|single_scale_head)="
                 r"'(\w+)'"),
    ('new head', r"^model\.decode_head\.decoder_params\.(\w+)"),
    ('new neck', r"^model\.neck=\{'type': '(\w+)'"),
)
#: blockers outside issue 20's goal ("needs no new dataset, backbone or
#: head"; AdvSeg and MinEnt are not the mission's methods)
OUTSIDE_GOAL = ('out of scope (AdvSeg / MinEnt)', 'new dataset',
                'new backbone', 'new head', 'new neck')


def blocker(res):
    """(category, detail) of why a config stopped; None if it built."""
    if res['stage'] == 'built':
        return None
    reasons = res.get('reasons', [])
    if res['stage'] == 'refused':
        for cat, pattern in BLOCKERS:
            for r in reasons:
                m = re.search(pattern, r)
                if m:
                    return cat, m.group(1) if m.groups() else r
        return 'option', reasons[0].split('=')[0] if reasons else '?'
    return res['stage'], (reasons[0] if reasons else '?')[:120]


def summarise(results):
    """Counts per repo and id, and the blockers of the rest."""
    table = collections.OrderedDict()
    blockers = collections.Counter()
    order = ['refused', 'crash', 'converted', 'preflight', 'built']
    for repo, group, res in results:
        row = table.setdefault(f'{repo} {group}', collections.Counter())
        row['total'] += 1
        stage = res['stage']
        if stage == 'crash':
            row['crash'] += 1
        for s in ('converted', 'preflight', 'built'):
            if stage in order[order.index(s):]:
                row[s] += 1
        b = blocker(res)
        if b is None or b[0] not in OUTSIDE_GOAL:
            row['goal'] += 1
            row['goal_built'] += b is None
        if b is None or b[0] != OUTSIDE_GOAL[0]:
            row['mission'] += 1
            row['mission_built'] += b is None
        if b is not None:
            blockers[b] += 1
    return table, blockers


#: the per-id counts (every row has all of them, zeros included)
COLUMNS = ('total', 'converted', 'preflight', 'built', 'crash', 'goal',
           'goal_built', 'mission', 'mission_built')


def markdown(table, blockers, total, argv, rows=None):
    cols = COLUMNS[:7]
    md = ['| repo / paper id | configs | converted | pass pre-flight | '
          'build | crash | in goal | in goal: build |',
          '|---|---|---|---|---|---|---|---|']
    for k, row in list(table.items()) + [('**all**', total)]:
        md.append(f'| {k} | ' + ' | '.join(str(row[c]) for c in cols) + ' |')
    md += ['', '"In goal": needs no new dataset, backbone, head or neck and '
           'is not AdvSeg / MinEnt (which stop at "out of scope").',
           f"Of the mission's configs (all but AdvSeg / MinEnt): "
           f"{total['mission_built']} of {total['mission']} build "
           f"({100 * total['mission_built'] / max(total['mission'], 1):.1f} "
           '%).', '',
           '| why the rest stop | what | configs |', '|---|---|---|']
    for (cat, detail), n in sorted(blockers.items(),
                                   key=lambda kv: (-kv[1], kv[0])):
        md.append(f'| {cat} | `{detail}` | {n} |')
    if rows:
        md += ['', "The mission's configs by benchmark, backbone and head "
               "(the names experiments.py gives them; '?': a predefined "
               'file):', '', '| by | name | configs | build |',
               '|---|---|---|---|']
        for (kind, name), c in sorted(rows.items()):
            md.append(f"| {kind} | `{name}` | {c['total']} | "
                      f"{c['built']} |")
    md += ['', f"`python bench/reference_sweep.py {' '.join(argv)}`"]
    return md


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ref', action='append', required=True,
                        metavar='NAME=PATH',
                        help='reference repo checkout (NAME: DAFormer, '
                        'HRDA or MIC; for MIC its seg/ folder)')
    parser.add_argument('--ids', action='append', default=[],
                        metavar='NAME=ID,ID', help='paper ids to sweep '
                        '(default: every paper id of that repo)')
    parser.add_argument('--no-predefined', action='store_true')
    parser.add_argument('--no-build', action='store_true',
                        help='stop after the pre-flight (no model builds)')
    parser.add_argument('--out-dir', default=None,
                        help='write reference_sweep.json here')
    parser.add_argument('--work-dir', default=None,
                        help='keep the generated and converted configs here')
    args = parser.parse_args(argv)

    refs = {}
    for item in args.ref:
        name, _, path = item.partition('=')
        if name not in PAPER_IDS or not osp.isfile(
                osp.join(path, 'experiments.py')):
            parser.error(f'--ref {item}: expected NAME=PATH with NAME in '
                         f'{sorted(PAPER_IDS)} and PATH holding '
                         'experiments.py')
        refs[name] = osp.abspath(path)
    ids = dict(PAPER_IDS)
    for item in args.ids:
        name, _, lst = item.partition('=')
        ids[name] = [int(x) for x in lst.split(',') if x]

    import logging

    import mmplugins  # noqa: F401
    from mmengine.logging import MMLogger
    # init_weights logs one line per parameter: keep the sweep's output
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    work = args.work_dir or tempfile.mkdtemp(prefix='ref_sweep_')
    t0 = time.time()
    results, built = [], {}
    for name, root in refs.items():
        items = generate(name, root, ids[name], osp.join(work, 'generated'))
        if not args.no_predefined:
            items += predefined(root)
        for group, src in items:
            label = f'exp{group}' if isinstance(group, int) else group
            if isinstance(src, Exception):
                results.append((name, label, dict(
                    src=None, stage='crash',
                    reasons=[f'generation: {type(src).__name__}: {src}'])))
                continue
            dst = osp.join(work, 'converted', name, label,
                           osp.basename(src))
            res = check_one(src, dst, built, not args.no_build)
            results.append((name, label, res))
            print(f'{name:8s} {label:18s} {res["stage"]:9s} '
                  f'{osp.basename(src)[:60]}  '
                  f'{"; ".join(res.get("reasons", []))[:160]}', flush=True)
    table, blockers = summarise(results)
    total = collections.Counter()
    for row in table.values():
        total.update(row)
    rows = breakdown(results)
    md = markdown(table, blockers, total, sys.argv[1:] if argv is None
                  else list(argv), rows)
    print(f'\n{len(built)} distinct models built, {time.time() - t0:.0f} s')
    if args.out_dir:
        from _common import write_results
        write_results('reference_sweep', dict(
            rows=[dict(id=k, **{c: row[c] for c in COLUMNS})
                  for k, row in table.items()],
            total={c: total[c] for c in COLUMNS},
            blockers=[dict(category=c, detail=d, count=n)
                      for (c, d), n in blockers.most_common()],
            configs=[dict(repo=n, id=g, src=osp.relpath(r['src'], refs[n])
                          if r.get('src') else None, stage=r['stage'],
                          reasons=r.get('reasons', []),
                          **{k: r.get(k, '?') for k, _ in ROW_NAMES})
                     for n, g, r in results],
            breakdown=[dict(by=k, name=nm, **c)
                       for (k, nm), c in rows.items()],
            distinct_models_built=len(built),
            seconds=round(time.time() - t0)), md, args.out_dir)
    else:
        print('\n'.join(md))
    return 0


if __name__ == '__main__':
    sys.exit(main())
