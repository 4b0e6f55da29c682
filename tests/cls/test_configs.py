"""Every configs/mask_cls config loads and builds its model; the recipe shows
gradient accumulation + AdamP, the AMP variant AmpOptimWrapper."""
import glob
import os.path as osp

import pytest
import torch

pytest.importorskip('mmpretrain')
pytest.importorskip('timm')


def _configs(repo_root):
    return sorted(glob.glob(osp.join(repo_root, 'configs', 'mask_cls',
                                     '*.py')))


def test_configs_build(repo_root):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    import mmplugins  # noqa: F401
    paths = _configs(repo_root)
    assert len(paths) >= 6
    for path in paths:
        cfg = Config.fromfile(path)
        assert cfg.default_scope == 'mmpretrain'
        assert cfg.model.backbone.pretrained is False
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(cfg.model)
        model.eval()
        out = model(torch.randn(2, 3, 64, 64), mode='predict')
        assert out[0].pred_score.shape == (18, ), path
    recipe = Config.fromfile(osp.join(
        repo_root, 'configs/mask_cls/mask_label_head_recipe_mnv3_demo.py'))
    assert recipe.optim_wrapper.accumulative_counts == 2
    assert recipe.optim_wrapper.optimizer.type == 'AdamP'
    assert recipe.train_dataloader.sampler.type == 'ClassBalancedSampler'
    amp = Config.fromfile(osp.join(
        repo_root,
        'configs/mask_cls/mask_label_head_recipe_amp_mnv3_demo.py'))
    assert amp.optim_wrapper.type == 'AmpOptimWrapper'
    assert amp.optim_wrapper.accumulative_counts == 2


def test_timm_backbone_by_name(repo_root):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(
        repo_root, 'configs/mask_cls/mask_label_head_mnv3_demo.py'))
    cfg.model.backbone.model_name = 'resnet10t'
    cfg.model.head.in_channels = 512
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert type(model.backbone.timm_model).__name__ == 'FeatureListNet'
    assert model(torch.randn(2, 3, 64, 64), mode='tensor').shape == (2, 8)
