"""bench/reference_sweep.py on a fake reference repository written here
(an experiments.py that imports mmcv 1.x's Config, as the real ones do): the
shim, the launcher's fields, the counts and the blockers."""
import json
import os.path as osp
import sys
import textwrap

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
for p in (osp.join(ROOT, 'bench'), osp.join(ROOT, 'tests', 'tools')):
    if p not in sys.path:
        sys.path.insert(0, p)

import reference_sweep as sweep  # noqa: E402
from test_convert_reference_config import write_family  # noqa: E402

EXPERIMENTS = '''
from mmcv import Config


def generate_experiment_cfgs(id):
    # as the reference: reads its configs relative to the repo root
    Config.fromfile('configs/_base_/dacs.py')
    cfgs = []
    for seed, backbone in ((0, 'mit_b0'), (1, 'mit_b0'), (0, 'HRNet')):
        model = dict(backbone=dict(type=backbone))
        if backbone == 'HRNet':
            model['backbone']['extra'] = 1
        cfgs.append(dict(_base_=['_base_/dacs.py'], seed=seed, model=model,
                         name=f'x{id}_{backbone}_s{seed}', exp=id,
                         n_gpus=1, name_dataset='gta2cs',
                         name_encoder=backbone, name_decoder='daformer'))
    if id == 2:
        raise RuntimeError('no such id')
    return cfgs
'''


def _fake_repo(tmp_path):
    repo = tmp_path / 'FakeRef'
    base = repo / 'configs' / '_base_'
    base.mkdir(parents=True)
    src = write_family(base, 'dacs')
    (base / 'dacs.py').write_text(open(src).read())
    (repo / 'experiments.py').write_text(textwrap.dedent(EXPERIMENTS))
    (repo / 'configs' / 'mic').mkdir()
    (repo / 'configs' / 'mic' / 'predef.py').write_text(
        "_base_ = ['../_base_/dacs.py']\nuda = dict(my_new_key=1)\n")
    return repo


def test_sweep_counts_and_blockers(tmp_path, monkeypatch):
    repo = _fake_repo(tmp_path)
    monkeypatch.setitem(sweep.PAPER_IDS, 'MIC', [1, 2])
    mmcv_before = sys.modules.get('mmcv')
    out = tmp_path / 'out'
    rc = sweep.main(['--ref', f'MIC={repo}', '--out-dir', str(out),
                     '--work-dir', str(tmp_path / 'work')])
    assert rc == 0
    assert sys.modules.get('mmcv') is mmcv_before  # shim removed again
    data = json.loads((out / 'reference_sweep.json').read_text())
    rows = {r['id']: r for r in data['rows']}
    exp1 = rows['MIC exp1']
    assert (exp1['total'], exp1['converted'], exp1['preflight'],
            exp1['built']) == (3, 2, 2, 2)
    assert exp1['goal'] == 2 and exp1['goal_built'] == 2  # HRNet: no goal
    assert rows['MIC exp2']['crash'] == 1  # generation failed: reported
    pre = rows['MIC configs/mic']
    assert pre['total'] == 1 and pre['converted'] == 0
    blockers = {(b['category'], b['detail']): b['count']
                for b in data['blockers']}
    assert blockers[('new backbone', 'HRNet')] == 1
    assert blockers[('option', 'uda.my_new_key')] == 1
    assert 'provenance' in data
    # the launcher's fields, as run_experiments.py writes them
    gen = Config.fromfile(str(tmp_path / 'work' / 'generated' / 'MIC' /
                              'exp1' / 'x1_mit_b0_s1_001.py'))
    assert gen.git_rev and gen.work_dir.endswith('x1_mit_b0_s1_001')
    md = (out / 'reference_sweep.md').read_text()
    assert '| MIC exp1 | 3 | 2 | 2 | 2 | 0 | 2 | 2 |' in md
    by = {(b['by'], b['name']): (b['total'], b['built'])
          for b in data['breakdown']}
    assert by[('backbone', 'mit_b0')] == (2, 2)
    assert by[('backbone', 'HRNet')] == (1, 0)
    assert by[('benchmark', 'gta2cs')][0] == 3


def test_generated_values_load_back(tmp_path):
    path = tmp_path / 'c.py'
    v = dict(t=float('inf'), s=(1,), l=[1.5, None, 'a'])
    path.write_text(f'x = {sweep._py(v)}\n')
    assert Config.fromfile(str(path)).x == v
