"""``make demo``'s chain (tools/demo.py) at tiny size through the real tools:
source-only warm start -> UDA initialised from it -> summary line + PNG."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest

from _testutils import ROOT

pytestmark = pytest.mark.slow

SUMMARY = re.compile(r'^target mIoU: source-only (\d+\.\d\d) -> MIC\+dual '
                     r'(\d+\.\d\d)$', re.M)


def _demo(ws, *extra):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'demo.py'), '--config',
         osp.join(ROOT, 'configs', 'mic_dual_aug.py'), '--warm-iters', '2',
         '--iters', '2', '--workers', '0', '--num-vis', '2', '--work-dir',
         'work_dirs/demo', *extra, '--cfg-options',
         'val_dataloader.num_workers=0',
         'val_dataloader.persistent_workers=False'],
        cwd=ws, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return out.stdout


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory, seg_demo_root):
    ws = tmp_path_factory.mktemp('demo_ws')
    os.makedirs(ws / 'data')
    os.symlink(seg_demo_root, ws / 'data' / 'samsung_demo')
    return ws, _demo(ws, '--results-out', 'results', '--control')


def _val_miou(work_dir):
    rows = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            rows += [json.loads(x) for x in f if x.strip()]
    return [r['mIoU'] for r in rows if 'mIoU' in r]


def test_summary_line_reports_both_runs_val_miou(demo_run):
    ws, out = demo_run
    m = SUMMARY.search(out)
    assert m, out[-2000:]
    wd = ws / 'work_dirs' / 'demo'
    # the two figures are the two runs' own final validation (target val)
    assert float(m.group(1)) == pytest.approx(
        _val_miou(wd / 'source_only')[-1], abs=0.005)
    assert float(m.group(2)) == pytest.approx(
        _val_miou(wd / 'mic_dual_aug')[-1], abs=0.005)
    assert f'work dir: {wd / "mic_dual_aug"}' in out
    assert re.search(r'^demo time: \d+ s \(warm start \d+ s, UDA \d+ s; '
                     r'install excluded\)$', out, re.M)


def test_results_file_carries_figures_and_provenance(demo_run):
    ws, out = demo_run
    with open(ws / 'results' / 'demo.json') as f:
        res = json.load(f)
    m = SUMMARY.search(out)
    assert round(res['source_only_mIoU'], 2) == float(m.group(1))
    assert round(res['uda_mIoU'], 2) == float(m.group(2))
    assert res['warm_iters'] == 2 and res['iters'] == 2
    assert res['warm_start_reused'] is False
    # --control: source-only continued from the warm start for --iters
    ctrl = ws / 'work_dirs' / 'demo' / 'source_only_continued'
    assert res['source_only_continued_mIoU'] == pytest.approx(
        _val_miou(ctrl)[-1])
    assert 'control: source-only continued for the same 2 iterations' in out
    assert res['pseudo_weight'] and res['pseudo_weight'][-1][1] == \
        res['final_pseudo_weight']
    # logged as a 10-iteration mean (configs/_base_/default_runtime.py)
    assert res['pseudo_weight_window'] == 10
    assert 'pseudo_weight' in out and 'over the last 10 iterations' in out
    prov = res['provenance']
    for key in ('commit', 'dirty', 'command', 'machine', 'packages', 'date'):
        assert key in prov, key
    assert '--results-out' in prov['command']


def test_uda_run_is_initialised_from_the_warm_start(demo_run):
    ws, _ = demo_run
    wd = ws / 'work_dirs' / 'demo'
    # the UDA run's student is the warm start's student (init_cfg
    # Pretrained with prefix 'student.'), not load_from: its own counter
    # starts at 0 (the teacher is the copy of the student at iteration 0)
    from mmengine.config import Config
    cfg = Config.fromfile(str(wd / 'mic_dual_aug' / 'mic_dual_aug.py'))
    warm = str(wd / 'source_only' / 'iter_2.pth')
    assert cfg.model.segmentor.init_cfg == dict(
        type='Pretrained', checkpoint=warm, prefix='student.')
    assert cfg.load_from is None
    log = glob.glob(str(wd / 'mic_dual_aug' / '*' / '*.log'))[0]
    assert f'load from {warm}' in open(log).read()
    # the UDA run keeps the config's lr (the real recipe's, for pretrained
    # weights); the warm start trains from scratch at 6e-4
    shipped = Config.fromfile(osp.join(ROOT, 'configs', 'mic_dual_aug.py'))
    assert cfg.optim_wrapper.optimizer.lr == \
        shipped.optim_wrapper.optimizer.lr
    # the warm start is the source-only variant of the same model
    src = Config.fromfile(str(wd / 'source_only' / 'mic_dual_aug.py'))
    assert src.model.mask_lambda == 0 and src.model.mix is None
    assert src.model.dual_branch_lambda == 0
    assert src.train_dataloader.dataset.rare_class_sampling is None
    assert src.optim_wrapper.optimizer.lr == 6e-4
    import torch
    ck = torch.load(str(wd / 'mic_dual_aug' / 'iter_2.pth'),
                    map_location='cpu', weights_only=False)
    assert int(ck['state_dict']['local_iter']) == 2


def test_panel_png_has_one_row_per_image_and_four_columns(demo_run):
    ws, out = demo_run
    m = re.search(r'^panel: (\S+\.png)', out, re.M)
    assert m
    import cv2
    panel = cv2.imread(m.group(1))
    assert panel is not None and panel.dtype == np.uint8
    # the first two target val images at their ground truth's size, four
    # tiles side by side under a 24 px header
    from mmplugins.datasets.samsung_camera import SamsungCameraDADataset  # noqa
    from PIL import Image
    gt_dir = ws / 'data' / 'samsung_demo' / 'val_target_gt'
    gts = sorted(os.listdir(gt_dir))[:2]
    sizes = [Image.open(gt_dir / g).size for g in gts]  # (W, H)
    assert panel.shape[0] == 24 + sum(h for _, h in sizes)
    assert panel.shape[1] == 4 * max(w for w, _ in sizes)
    # the ground-truth tile is not blank, and differs from the image tile
    w = sizes[0][0]
    gt_tile = panel[24:24 + sizes[0][1], 3 * w:4 * w]
    assert gt_tile.std() > 0
    assert not np.array_equal(gt_tile, panel[24:24 + sizes[0][1], :w])


def test_second_demo_reuses_the_warm_start(demo_run):
    ws, _ = demo_run
    ckpt = ws / 'work_dirs' / 'demo' / 'source_only' / 'iter_2.pth'
    before = ckpt.stat().st_mtime_ns
    out = _demo(ws)
    assert 'reusing' in out and SUMMARY.search(out)
    assert ckpt.stat().st_mtime_ns == before


def test_warm_start_cache_key_follows_the_resolved_config():
    from mmplugins.utils.warm_start import config_hash
    cfg = osp.join(ROOT, 'configs', 'mic_dual_aug.py')
    base = config_hash(cfg, ['train_cfg.max_iters=2'])
    assert base == config_hash(cfg, ['train_cfg.max_iters=2'])
    assert base != config_hash(cfg, ['train_cfg.max_iters=3'])
    assert base != config_hash(cfg, ['train_cfg.max_iters=2',
                                          'model.mask_lambda=0'])


def test_console_shows_progress_not_the_config_dump(demo_run):
    ws, out = demo_run
    assert 'Iter(train)' in out and 'mIoU:' in out
    # environment, config dump and hook tables stay in the log files
    assert 'model = dict(' not in out and 'Environment' not in out
    log = glob.glob(str(ws / 'work_dirs' / 'demo' / 'mic_dual_aug' / '*' /
                        '*.log'))[0]
    assert 'model = dict(' in open(log).read()


def test_failed_training_shows_its_tail_and_names_the_work_dir(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'demo.py'), '--config',
         osp.join(ROOT, 'configs', 'mic_dual_aug.py'), '--warm-iters', '1',
         '--iters', '1', '--work-dir', 'wd', '--cfg-options',
         'model.segmentor.type=NoSuchSegmentor'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert 'NoSuchSegmentor' in out.stdout  # the tail of the child's output
    assert 'demo: training failed' in out.stderr
    assert str(tmp_path / 'wd' / 'source_only') in out.stderr


def test_bad_arguments_exit_with_one_message(tmp_path):
    for args, key in ((['--iters', '0'], '--iters'),
                      (['--workers', '-1'], '--workers'),
                      (['--config', 'nope.py'], 'nope.py')):
        out = subprocess.run([sys.executable,
                              osp.join(ROOT, 'tools', 'demo.py'), *args],
                             cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode != 0
        assert key in out.stderr
