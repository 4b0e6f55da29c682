"""tools/analysis/diet_report.py and tools/ensemble_det.py."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
from _diet_fixtures import CLASSES


def _load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(rel))[0], osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diet_report(repo_root, driver_demo_small, tmp_path, capsys):
    tool = _load_tool(repo_root, 'tools/analysis/diet_report.py')
    root = driver_demo_small['data_root']
    rep = tool.main([
        osp.join(repo_root, 'configs/diet_det/stage1_diet.py'), '--out-dir',
        str(tmp_path), '--cfg-options',
        f'train_dataloader.dataset.data_root={root}'
    ])
    full = [driver_demo_small['train']['instances'][c] for c in CLASSES]
    assert rep['full'] == full
    assert rep['diet'][5:] == full[5:]           # every phone and cigar kept
    assert sum(rep['diet']) < sum(full)
    saved = json.load(open(tmp_path / 'diet_report.json'))
    assert saved['subset_size'] == rep['subset_size'] < 48
    png = open(tmp_path / 'diet_report.png', 'rb').read()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
    out = capsys.readouterr().out
    assert f'diet subset: {rep["subset_size"]} of 48 images' in out
    assert any(line.split()[:4] == ['phone', str(full[5]), str(full[5]),
                                    '100.0'] for line in out.splitlines())
    with pytest.raises(ValueError, match='must be a DietSampler'):
        tool.main([osp.join(repo_root,
                            'configs/diet_det/rtmdet_tiny_full_data.py'),
                   '--out-dir', str(tmp_path), '--no-plot'])


def test_weighted_boxes_fusion_and_nms(repo_root):
    tool = _load_tool(repo_root, 'tools/ensemble_det.py')
    a = [dict(image_id=1, category_id=1, bbox=[10, 10, 20, 20], score=0.9),
         dict(image_id=1, category_id=1, bbox=[100, 100, 10, 10],
              score=0.5),
         dict(image_id=1, category_id=2, bbox=[10, 10, 20, 20], score=0.4)]
    b = [dict(image_id=1, category_id=1, bbox=[12, 10, 20, 20], score=0.3)]
    out = tool.ensemble_results([a, b], method='wbf', iou_thr=0.55)
    by_cat = {}
    for d in out:
        by_cat.setdefault(d['category_id'], []).append(d)
    fused = by_cat[1][0]
    # score-weighted mean box; mean score, both models agree -> x 2/2
    assert np.allclose(fused['bbox'], [10.5, 10, 20, 20])
    assert fused['score'] == pytest.approx(0.6)
    # found by one model only: mean score x 1/2
    assert by_cat[1][1]['score'] == pytest.approx(0.25)
    assert by_cat[2][0]['score'] == pytest.approx(0.2)   # classes separate
    out = tool.ensemble_results([a, b], method='nms', iou_thr=0.5)
    cat1 = [d for d in out if d['category_id'] == 1]
    assert [d['score'] for d in cat1] == [0.9, 0.5]
    with pytest.raises(ValueError, match="method must be 'wbf' or 'nms'"):
        tool.ensemble_results([a], method='soft')
