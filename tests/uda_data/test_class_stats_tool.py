"""tools/analysis/class_stats.py on a data folder and on a config."""
import importlib.util
import json
import os.path as osp
import subprocess

import cv2
import pytest
from _uda_data_fixtures import source_cfg, target_cfg


def _tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'class_stats_tool', osp.join(repo_root,
                                     'tools/analysis/class_stats.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(python_exe, repo_root, *args):
    proc = subprocess.run(
        [python_exe, osp.join(repo_root, 'tools/analysis/class_stats.py'),
         *args], cwd=repo_root, capture_output=True, text=True, timeout=300,
        env=dict(__import__('os').environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_tool_on_config(demo_root, tmp_path, python_exe, repo_root):
    # a config whose train set is a UDADataset with RCS
    cfg = tmp_path / 'rcs_cfg.py'
    ds = dict(type='UDADataset', source=source_cfg(demo_root),
              target=target_cfg(demo_root),
              rare_class_sampling=dict(class_temp=0.01, min_pixels=100,
                                       min_crop_ratio=0.5))
    cfg.write_text(
        "default_scope = 'mmseg'\n"
        "custom_imports = dict(imports=['mmplugins'], "
        'allow_failed_imports=False)\n'
        f'train_dataloader = dict(batch_size=2, dataset={ds!r})\n')
    out_dir = tmp_path / 'out'
    stdout = _run(python_exe, repo_root, str(cfg), '--out-dir', str(out_dir))
    res = json.loads((out_dir / 'class_stats.json').read_text())
    assert res['min_pixels'] == 100 and res['class_temp'] == 0.01
    rows = {r['name']: r for r in res['classes']}
    assert rows['rare']['pixels'] == 2 * 256
    assert rows['rare']['images'] == 2 and rows['tiny']['images'] == 0
    assert rows['tiny']['rcs_prob'] == 0.0          # dropped: < min_pixels
    assert rows['rare']['rcs_prob'] > 0.9
    assert sum(r['rcs_prob'] for r in res['classes']) == pytest.approx(1.0)
    assert abs(sum(r['frequency'] for r in res['classes']) - 1) < 1e-9
    assert 'rare' in stdout and 'rcs_prob' in stdout
    png = cv2.imread(str(out_dir / 'class_stats.png'))
    assert png is not None and png.shape[0] > 100 and png.std() > 0



def test_tool_on_data_dir(demo_root, tmp_path, repo_root, capsys):
    # a folder in the demo layout, class names unknown (in-process: fast)
    out2 = tmp_path / 'out2'
    _tool(repo_root).main([demo_root, '--out-dir', str(out2),
                           '--num-classes', '4', '--min-pixels', '3000'])
    res2 = json.loads((out2 / 'class_stats.json').read_text())
    # road = lower 43 rows - ignored corner - tiny; the rare square is in sky
    assert [r['pixels'] for r in res2['classes']] == [
        8 * 43 * 96 - 8 * 32 - 3 * 4, 8 * 21 * 96 - 2 * 256, 3 * 4, 2 * 256]
    assert 'statistics: computed' in capsys.readouterr().out
    # with min_pixels=3000 only road (4100 px/image) has eligible images
    assert [r['images'] for r in res2['classes']] == [8, 0, 0, 0]
    assert [r['rcs_prob'] for r in res2['classes']] == [1.0, 0.0, 0.0, 0.0]
    assert osp.isfile(out2 / 'class_stats.png')
