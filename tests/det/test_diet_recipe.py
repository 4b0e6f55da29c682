"""The diet -> fine-tune recipe through the real Runner: stage 1 from the
command line (tools/train.py), stage 2 loading its checkpoint."""
import glob
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from _diet_fixtures import CLASSES, load_cfg


def reference_diet_size(ann_file):
    """The reference rules, written out independently of the sampler."""
    coco = json.load(open(ann_file))
    cats = {img['id']: set() for img in coco['images']}
    for ann in coco['annotations']:
        cats[ann['image_id']].add(CLASSES[ann['category_id'] - 1])
    kept, mouth = 0, 0
    for img in coco['images']:
        c = cats[img['id']]
        if c & {'cigar', 'phone'} or {'eye_closed', 'mouth_closed'} <= c \
                or {'eye_closed', 'mouth_opened'} <= c:
            kept += 1
        elif 'mouth_opened' in c:
            mouth += 1
            kept += mouth % 3 == 0
    return kept


@pytest.mark.slow
def test_stage1_cli_then_stage2_finetune(tmp_path, driver_demo_small,
                                         repo_root):
    root = driver_demo_small['data_root']
    work1 = tmp_path / 'stage1'
    data_opts = [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={root}annotations/instances_val.json',
        f'test_evaluator.ann_file={root}annotations/instances_val.json',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
    ]
    cmd = [sys.executable, 'tools/train.py', 'configs/diet_det/stage1_diet.py',
           '--work-dir', str(work1), '--cfg-options',
           'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
           'train_dataloader.batch_size=4', 'default_hooks.logger.interval=1',
           'default_hooks.checkpoint.interval=2'] + data_opts
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = open(glob.glob(str(work1 / '*' / '*.log'))[0]).read()

    # the diet subset and its epoch_parts=2 epochs, as the reference says
    n_diet = reference_diet_size(root + 'annotations/instances_train.json')
    assert f'DietSampler kept {n_diet} of 48 images' in log
    per_epoch = n_diet // 2
    iters = math.ceil(per_epoch / 4)
    assert f'Epoch(train) [2][{iters}/{iters}]' in log
    assert f'[2][{iters + 1}/' not in log
    phone = re.search(r'^phone\s+(\d+)\s+(\d+)$', log, re.M)
    assert phone and phone.group(1) == phone.group(2)  # every phone kept
    assert 'coco/phone_precision' in log
    ckpt1 = open(work1 / 'last_checkpoint').read().strip()
    assert ckpt1.endswith('epoch_2.pth')

    # stage 2: full distribution, load_from stage 1, lower lr
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS
    from mmengine.runner import Runner
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    stage1_state = torch.load(ckpt1, map_location='cpu')['state_dict']

    @HOOKS.register_module(force=True)
    class CompareToStage1Hook(Hook):
        max_diff = None

        def before_train(self, runner):
            state = runner.model.state_dict()
            CompareToStage1Hook.max_diff = max(
                (state[k].float() - v.float()).abs().max().item()
                for k, v in stage1_state.items())

    cfg = load_cfg('configs/diet_det/stage2_finetune.py')
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
    cfg.merge_from_dict(dict(
        (opt.split('=')[0], opt.split('=')[1]) for opt in data_opts))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.work_dir = str(tmp_path / 'stage2')
    cfg.load_from = ckpt1
    cfg.train_dataloader.batch_size = 8
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.custom_hooks = [dict(type='CompareToStage1Hook')]
    cfg.visualizer.name = 'vis_stage2_test'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert CompareToStage1Hook.max_diff == 0.0
    assert len(runner.train_dataloader) == 6          # all 48 images / 8
    assert runner.optim_wrapper.optimizer.defaults['lr'] == 0.0005
    for cls in CLASSES:
        value = runner.message_hub.get_scalar(
            f'val/coco/{cls}_precision').current()
        assert isinstance(value, float)
    assert osp.isfile(tmp_path / 'stage2' / 'epoch_1.pth')
