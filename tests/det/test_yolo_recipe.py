"""The YOLOv5 diet -> fine-tune recipe (mmyolo) through tools/train.py:
stage 1 (diet + mosaic from the diet), its resume, stage 2 loading stage 1,
and the two stages' ensemble through tools/test.py + tools/ensemble_det.py.
tools/train.py's main runs in this process (mmyolo imported once)."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

pytest.importorskip('mmyolo', reason='mmyolo is installed by `make install`')

from _diet_fixtures import CLASSES, diet_names  # noqa: E402

from mmengine.hooks import Hook  # noqa: E402
from mmengine.registry import HOOKS  # noqa: E402

RECORD = {}


@HOOKS.register_module(name='_YoloRecipeRecordHook', force=True)
class RecordHook(Hook):
    """Weights right after load/resume, the sampler's draw per epoch, the
    lr and the pipeline's transform types."""

    def __init__(self, key):
        self.key = key

    def before_train(self, runner):
        ema = [h for h in runner.hooks if type(h).__name__ == 'EMAHook']
        RECORD[self.key] = dict(
            ema_state={k: v.detach().clone() for k, v in
                       ema[0].ema_model.module.state_dict().items()},
            start_state={k: v.detach().clone()
                         for k, v in runner.model.state_dict().items()},
            start_epoch=runner.epoch, draws={}, iters={},
            lr=runner.optim_wrapper.optimizer.defaults['lr'],
            sampler=type(runner.train_dataloader.sampler).__name__,
            dataset=type(runner.train_dataloader.dataset).__name__,
            pipeline=[type(t).__name__ for t in
                      runner.train_dataloader.dataset.pipeline.transforms])

    def before_train_epoch(self, runner):
        RECORD[self.key]['draws'][runner.epoch] = \
            list(runner.train_dataloader.sampler)
        RECORD[self.key]['iters'][runner.epoch] = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        RECORD[self.key]['iters'][runner.epoch] += 1


def _load_tool(repo_root, name):
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name}', osp.join(repo_root, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _opts(root, stage1, key):
    train_root = ('train_dataloader.dataset.dataset.data_root' if stage1 else
                  'train_dataloader.dataset.data_root')
    ann = f'{root}annotations/instances_val.json'
    return [
        f'{train_root}={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
        'default_hooks.record.type=_YoloRecipeRecordHook',
        f'default_hooks.record.key={key}',
        f'visualizer.name=vis_yolo_recipe_{key}',
    ]


@pytest.mark.slow
def test_yolov5_stage1_resume_stage2_ensemble(tmp_path, driver_demo_small,
                                              repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    train = _load_tool(repo_root, 'train')
    root = driver_demo_small['data_root']
    n_diet = len(diet_names(root))
    w1 = tmp_path / 'stage1'

    # ---- stage 1: diet, epoch_parts=2, 2 epochs of 2 iterations (batch 4)
    train.main(['configs/diet_det/yolov5_n_stage1_diet.py', '--work-dir',
                str(w1), '--cfg-options', *_opts(root, True, 's1'),
                'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                'train_dataloader.batch_size=4',
                'default_hooks.checkpoint.interval=1'])
    s1 = RECORD['s1']
    assert s1['sampler'] == 'DietSampler'
    assert s1['dataset'] == 'SubsetMixDataset'
    assert 'Mosaic' in s1['pipeline']
    assert 'YOLOv5HSVRandomAug' in s1['pipeline']
    per_epoch = n_diet // 2
    assert [len(s1['draws'][e]) for e in (0, 1)] == [per_epoch] * 2
    assert s1['iters'] == {0: -(-per_epoch // 4), 1: -(-per_epoch // 4)}
    assert s1['draws'][0] != s1['draws'][1]
    assert s1['lr'] == 0.01
    log = open(next(w1.glob('*/*.log'))).read()
    assert f'DietSampler kept {n_diet} of 48 images' in log
    assert 'coco/phone_precision' in log  # per-class AP evaluated
    ckpt1 = str(w1 / 'epoch_2.pth')
    assert open(w1 / 'last_checkpoint').read().strip().endswith(
        'epoch_2.pth')

    # ---- resume stage 1 from epoch 1: same draw for epoch 2, weights and
    # EMA restored
    w1b = tmp_path / 'stage1_resumed'
    train.main(['configs/diet_det/yolov5_n_stage1_diet.py', '--work-dir',
                str(w1b), '--resume', str(w1 / 'epoch_1.pth'),
                '--cfg-options', *_opts(root, True, 'resume'),
                'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                'train_dataloader.batch_size=4'])
    res = RECORD['resume']
    assert res['start_epoch'] == 1
    assert res['draws'] == {1: s1['draws'][1]}
    assert res['iters'] == {1: s1['iters'][1]}
    ep1 = torch.load(str(w1 / 'epoch_1.pth'), map_location='cpu')
    # EMAHook saves the EMA weights as `state_dict` and the trained ones as
    # `ema_state_dict`; a resume swaps them back
    for k, v in ep1['state_dict'].items():
        assert torch.equal(res['ema_state'][k], v), k
        assert torch.equal(res['start_state'][k],
                           ep1['ema_state_dict']['module.' + k]), k

    # ---- stage 2: full data, lighter pipeline, loads stage 1's weights
    w2 = tmp_path / 'stage2'
    train.main(['configs/diet_det/yolov5_n_stage2_finetune.py', '--work-dir',
                str(w2), '--cfg-options', *_opts(root, False, 's2'),
                f'load_from={ckpt1}', 'train_cfg.max_epochs=1',
                'train_cfg.val_interval=1', 'train_dataloader.batch_size=8'])
    s2 = RECORD['s2']
    # load_from: stage 1's EMA weights (what YOLOv5 saves as the model)
    stage1_state = torch.load(ckpt1, map_location='cpu')['state_dict']
    for k, v in stage1_state.items():
        assert torch.equal(s2['start_state'][k], v), k
        assert torch.equal(s2['ema_state'][k], v), k
    assert s2['sampler'] == 'EpochPartsSampler'
    assert s2['dataset'] == 'YOLOv5CocoDataset'
    assert 'Mosaic' not in s2['pipeline']
    assert 'YOLOv5HSVRandomAug' not in s2['pipeline']
    assert len(s2['draws'][0]) == 48 // 2
    assert s2['iters'] == {0: 3}
    assert s2['lr'] == 0.0032
    assert osp.isfile(w2 / 'epoch_1.pth')

    # ---- ensemble of the two stages: tools/test.py dumps, WBF fuses
    test = _load_tool(repo_root, 'test')
    preds = []
    for cfg, ckpt, name in (
            ('yolov5_n_stage1_diet.py', ckpt1, 's1'),
            ('yolov5_n_stage2_finetune.py', str(w2 / 'epoch_1.pth'), 's2')):
        prefix = str(tmp_path / f'preds_{name}')
        test.main([f'configs/diet_det/{cfg}', ckpt, '--work-dir',
                   str(tmp_path / f'test_{name}'), '--cfg-options',
                   *_opts(root, name == 's1', f'test_{name}'),
                   f'test_evaluator.outfile_prefix={prefix}'])
        preds.append(prefix + '.bbox.json')
    ens = _load_tool(repo_root, 'ensemble_det')
    out = str(tmp_path / 'ensemble.bbox.json')
    ens.main([*preds, '--out', out, '--method', 'wbf',
              '--ann-file', f'{root}annotations/instances_val.json'])
    fused = json.load(open(out))
    assert fused and {d['category_id'] for d in fused} <= set(
        range(1, len(CLASSES) + 1))
