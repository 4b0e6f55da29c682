"""Every UDA toggle on and off through the real mmengine Runner."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmplugins  # noqa: F401
from _testutils import ROOT, set_data_root

pytestmark = pytest.mark.slow
CONFIG = osp.join(ROOT, 'configs', 'mic_dual_aug.py')

ALL_OFF = {'model.mix': None, 'model.mask_lambda': 0.0,
           'model.dual_branch_lambda': 0.0,
           'model.imnet_feature_dist_lambda': 0.0,
           'train_dataloader.dataset.rare_class_sampling': None}


def make_cfg(data_root, work_dir, name, iters=2, **opts):
    cfg = Config.fromfile(CONFIG)
    merged = dict(ALL_OFF)
    merged.update({
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': 1000,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': iters,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'model.vis_interval': 0,
        'visualizer.name': f'vis_{name}',
        'experiment_name': f'uda_{name}'})
    merged.update(opts)
    cfg.merge_from_dict(merged)
    set_data_root(cfg, data_root)
    cfg.work_dir = str(work_dir)
    return cfg


def train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def train_keys(runner):
    hist = runner.message_hub.log_scalars
    return {k[len('train/'):] for k in hist if k.startswith('train/')}


@pytest.mark.parametrize('name,opts,on,off', [
    ('all_off', {}, {'src.loss'},
     {'mix.loss', 'masked.loss', 'dist.loss', 'fd.loss', 'pseudo_weight'}),
    ('mix_fd_rcs', {'model.mix': 'class',
                    'model.imnet_feature_dist_lambda': 0.005,
                    'train_dataloader.dataset.rare_class_sampling':
                    dict(class_temp=0.01, min_pixels=200,
                         min_crop_ratio=0.5)},
     {'src.loss', 'mix.loss', 'fd.loss', 'pseudo_weight'},
     {'masked.loss', 'dist.loss'}),
    ('mic_dual', {'model.mask_lambda': 1.0, 'model.mask_block_size': 16,
                  'model.dual_branch_lambda': 1.0},
     {'src.loss', 'masked.loss', 'dist.loss', 'pseudo_weight'},
     {'mix.loss', 'fd.loss'}),
])
def test_toggle_through_runner(seg_demo_root, tmp_path, name, opts, on, off):
    cfg = make_cfg(seg_demo_root, tmp_path / name, name, **opts)
    runner = train(cfg)
    keys = train_keys(runner)
    assert on <= keys, (on - keys)
    assert not (off & keys), (off & keys)
    model = runner.model
    assert int(model.local_iter) == 2
    if 'rare_class_sampling' in str(opts):
        ds = runner.train_dataloader.dataset
        assert ds.rcs is not None and ds.last_rcs is not None


def test_per_domain_norm_teacher_eval_and_resume_keeps_teacher(
        seg_demo_root, tmp_path):
    opts = {'model.mix': 'class', 'model.eval_model': 'teacher',
            'model.data_preprocessor.target_mean': [60.0, 60.0, 70.0],
            'model.data_preprocessor.target_std': [40.0, 40.0, 45.0],
            'train_cfg.val_interval': 2}
    cfg = make_cfg(seg_demo_root, tmp_path, 'resume_a', **opts)
    runner = train(cfg)
    pre = runner.model.data_preprocessor
    assert pre.per_domain and pre.test_domain == 'target'
    assert torch.allclose(pre.domain_stats('target')[0].flatten(),
                          torch.tensor([60.0, 60.0, 70.0]))
    metrics = runner.message_hub.log_scalars
    assert 'val/mIoU' in metrics  # evaluated (with the teacher)
    saved = torch.load(osp.join(tmp_path, 'iter_2.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    teacher_saved = {k[len('teacher.'):]: v for k, v in saved.items()
                     if k.startswith('teacher.')}

    cfg = make_cfg(seg_demo_root, tmp_path, 'resume_b', iters=3,
                   resume=True, **opts)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.call_hook('before_run')
    runner.load_or_resume()
    model = runner.model
    assert runner.iter == 2 and int(model.local_iter) == 2
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_saved[k]), k
    # and the next step continues the EMA ramp at t=2 (alpha=2/3), not a copy
    before = {k: v.clone() for k, v in model.teacher.named_parameters()}
    runner.train_loop.run()
    assert int(model.local_iter) == 3
    moved = [not torch.equal(v, before[k])
             for k, v in model.teacher.named_parameters()]
    assert any(moved)
