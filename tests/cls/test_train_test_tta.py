"""A short real-Runner run: train (tools/train.py) the multi-label mask head
with the balanced sampler and the confusion-matrix hook, then test, TTA and
ensemble the dumped predictions."""
import glob
import json
import os.path as osp
import pickle
import subprocess

import numpy as np
import pytest

pytest.importorskip('mmpretrain')
pytest.importorskip('timm')

CONFIG = 'configs/mask_cls/mask_label_head_balanced_mnv3_demo.py'


def _data_opts(root):
    # a few images per split: the point is the real Runner path, not accuracy
    opts = ['train_dataloader.batch_size=16']
    for loader, n in (('train_dataloader', 64), ('val_dataloader', 48),
                      ('test_dataloader', 48)):
        opts += [f'{loader}.dataset.data_root={root}',
                 f'{loader}.dataset.num_folds=3',
                 f'{loader}.dataset.allow_empty_class=True',
                 f'{loader}.dataset.indices={n}',
                 f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts


@pytest.fixture(scope='module')
def trained(tmp_path_factory, mask_demo_root, repo_root, python_exe):
    work = str(tmp_path_factory.mktemp('mask_train'))
    cmd = [python_exe, 'tools/train.py', CONFIG, '--work-dir', work,
           '--cfg-options', 'train_cfg.max_epochs=2',
           'train_cfg.val_interval=1',
           'default_hooks.logger.interval=1',
           'default_hooks.checkpoint.interval=1',
           'param_scheduler.1.T_max=2'] + _data_opts(mask_demo_root)
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


@pytest.mark.slow
def test_train_logs_metrics_and_confusion_images(trained):
    scalars = glob.glob(osp.join(trained, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    rows = [json.loads(line) for line in open(scalars[0])]
    val = [r for r in rows if 'mask/joint_f1' in r]
    assert [r['step'] for r in val] == [1, 2]
    for r in val:
        assert 0 <= r['mask/joint_f1'] <= 100
        assert {'mask/mask_f1', 'mask/gender_f1', 'mask/age_f1'} <= set(r)
    train = [r for r in rows if 'loss_age' in r]
    assert {'loss_mask', 'loss_gender'} <= set(train[0])
    # the confusion matrix went to TensorBoard (one image per validation)
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    event = glob.glob(osp.join(trained, '*', 'vis_data', 'events.out.*'))[0]
    acc = EventAccumulator(event, size_guidance={'images': 0})
    acc.Reload()
    assert 'val_confusion_matrix' in acc.Tags()['images']
    steps = [e.step for e in acc.Images('val_confusion_matrix')]
    assert steps == [1, 2]
    assert len(glob.glob(osp.join(trained, '*', 'vis_data', 'vis_image',
                                  'val_confusion_matrix_*.png'))) == 2


def _test(argv):
    import test as test_tool  # tools/test.py
    test_tool.main(argv)


@pytest.mark.slow
def test_test_tta_and_ensemble(trained, mask_demo_root, repo_root, tmp_path,
                               monkeypatch):
    monkeypatch.chdir(repo_root)
    ckpt = osp.join(trained, 'epoch_2.pth')
    opts = ['--cfg-options'] + _data_opts(mask_demo_root)
    plain, tta, flip = (str(tmp_path / f'{n}.pkl')
                        for n in ('plain', 'tta', 'flip'))
    _test([CONFIG, ckpt, '--work-dir', str(tmp_path / 'w'), '--out', plain]
          + opts)
    _test([CONFIG, ckpt, '--work-dir', str(tmp_path / 'w'), '--out', tta,
           '--tta'] + opts)
    # the same model on always-mirrored images
    flip_cfg = tmp_path / 'flip.py'
    flip_cfg.write_text(
        f"_base_ = [{osp.join(repo_root, CONFIG)!r}]\n"
        "test_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile'),\n"
        "    dict(type='Resize', scale=(64, 64)),\n"
        "    dict(type='RandomFlip', prob=1., direction='horizontal'),\n"
        "    dict(type='PackInputs')]))\n")
    _test([str(flip_cfg), ckpt, '--work-dir', str(tmp_path / 'w'), '--out',
           flip] + opts)

    def load(p):
        return {r['img_path']: np.asarray(r['pred_score'])
                for r in pickle.load(open(p, 'rb'))}

    p, t, f = load(plain), load(tta), load(flip)
    assert len(p) == len(t) == len(f) == 48
    # hflip TTA = mean of the original and mirrored scores
    for k in p:
        assert np.allclose(t[k], (p[k] + f[k]) / 2, rtol=0, atol=1e-7)
    # (tolerance far below the plain-vs-mirror difference)
    assert max(np.abs(p[k] - f[k]).max() for k in p) > 1e-6

    # soft voting of plain + flip reproduces the TTA argmax
    from ensemble import main as ensemble
    out = tmp_path / 'sub.csv'
    report = ensemble([plain, flip, '--mode', 'soft', '--out', str(out)])
    rows = open(out).read().splitlines()
    assert rows[0] == 'ImageID,ans' and len(rows) == len(p) + 1
    # basenames repeat (mask1.jpg of every person): ids are relative paths
    first_id, first_ans = rows[1].split(',')
    assert first_id.count('/') == 1
    key = [k for k in t if k.endswith(first_id)][0]
    assert int(first_ans) == int(t[key].argmax())
    assert 0 <= report['ensemble_f1'] <= 100
