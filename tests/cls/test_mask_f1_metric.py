"""Macro-F1 (sklearn semantics), MaskF1Metric keys, confusion-matrix image."""
import numpy as np
import pytest
import torch

from mmplugins.engine.hooks.confusion_matrix_hook import (
    ConfusionMatrixHook, render_confusion_matrix)
from mmplugins.evaluation.metrics.mask_f1 import (MaskF1Metric,
                                                  confusion_matrix, macro_f1)


def test_macro_f1_hand_value():
    gt = [0, 0, 1, 1, 2]
    pred = [0, 1, 1, 1, 0]
    # class 0: tp1 fp1 fn1 -> 0.5 ; class 1: tp2 fp1 fn0 -> 0.8 ;
    # class 2: tp0 fn1 -> 0 ; classes 3.. absent everywhere -> left out
    assert macro_f1(gt, pred, 18) == pytest.approx((0.5 + 0.8 + 0.) / 3)
    cm = confusion_matrix(gt, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match=r'pred labels must be in \[0, 3\)'):
        confusion_matrix([0], [3], 3)


def test_mask_f1_metric_joint_and_groups():
    metric = MaskF1Metric()
    # (gt, pred): 15 = (2,1,0) ; 16 = (2,1,1) ; 0 = (0,0,0)
    pairs = [(15, 15), (15, 16), (0, 0), (0, 15)]
    samples = []
    for gt, pred in pairs:
        score = torch.zeros(18)
        score[pred] = 1.
        # a stale pred_label (as AverageClsScoreTTA leaves it) is ignored
        samples.append(dict(gt_label=torch.tensor([gt]), pred_score=score,
                            pred_label=torch.tensor([17])))
    metric.process(None, samples)
    res = metric.evaluate(4)
    assert res['mask/joint_acc'] == pytest.approx(50.)
    # joint classes 0, 15, 16: F1 = 2/3, 1/2, 0
    assert res['mask/joint_f1'] == pytest.approx(100 * (2 / 3 + .5) / 3)
    # mask: gt 2,2,0,0 pred 2,2,0,2 -> F1(0)=2/3, F1(2)=0.8
    assert res['mask/mask_f1'] == pytest.approx(100 * (2 / 3 + .8) / 2)
    assert res['mask/age_acc'] == pytest.approx(75.)
    assert set(res) == {f'mask/{k}_{m}' for k in
                        ('joint', 'mask', 'gender', 'age')
                        for m in ('f1', 'acc')}
    with pytest.raises(KeyError, match='x.jpg has no gt_label'):
        metric.process(None, [dict(pred_score=torch.ones(18),
                                   img_path='x.jpg')])


def test_confusion_matrix_image_and_hook_args():
    cm = np.arange(9).reshape(3, 3)
    img = render_confusion_matrix(cm, ['a', 'b', 'c'])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.std() > 0
    with pytest.raises(ValueError, match='class_names has 2 entries'):
        ConfusionMatrixHook(num_classes=3, class_names=['a', 'b'])
    with pytest.raises(ValueError, match="without \"/\""):
        ConfusionMatrixHook(num_classes=3, tag='val/cm')
