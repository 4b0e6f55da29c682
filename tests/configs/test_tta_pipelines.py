"""Every shipped seg config carries a tta_pipeline (mmseg's flips x scales)
at *its own* test scale, with labels exactly when its test set has them, and
a top-level test_pipeline (mmseg's inference_model reads it) that, without
its label transforms, is the test loader's."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from _testutils import ROOT

def _is_detection(path):
    # configs/real also holds the detection recipes (mmyolo / mmdet scope)
    return Config.fromfile(path).get('default_scope') != 'mmseg'


SEG_CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'real', '*.py'))
    if not _is_detection(p))


@pytest.mark.parametrize('path', SEG_CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in SEG_CONFIGS])
def test_tta_pipeline_matches_the_test_pipeline(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.tta_model == dict(type='SegTTAModel')
    test = cfg.test_dataloader.dataset.pipeline
    from mmplugins.submission.seg_predictor import strip_label_transforms
    assert strip_label_transforms(cfg.test_pipeline) == \
        strip_label_transforms(test)
    scale = [t for t in test if t['type'] == 'Resize'][0]['scale']
    load, tta = cfg.tta_pipeline
    assert load['type'] == 'LoadImageFromFile' and tta['type'] == \
        'TestTimeAug'
    resizes, flips, *rest = tta['transforms']
    ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # mmseg's configs
    assert [r['scale'] for r in resizes] == [
        (int(scale[0] * r), int(scale[1] * r)) for r in ratios]
    assert all(r['keep_ratio'] for r in resizes)
    assert [(f['prob'], f['direction']) for f in flips] == [
        (0., 'horizontal'), (1., 'horizontal')]
    labelled = any(t['type'] == 'LoadAnnotations' for t in test)
    names = [s[0]['type'] for s in rest]
    assert names[-1] == 'PackSegInputs'
    assert ('LoadAnnotations' in names) == labelled
