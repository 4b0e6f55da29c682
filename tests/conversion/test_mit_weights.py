"""SegFormer's original MiT checkpoint through ``Pretrained`` / ``pretrained``:
converted on the fly by mmseg's mit2mmseg.py, or one error; never a random
backbone behind a warning."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import mmplugins  # noqa: F401  (applies the fixes)
from _ref_naming import mit_to_segformer
from _testutils import ROOT
from mmplugins import compat

B0_SEGMENTOR = osp.join(ROOT, 'configs', '_base_', 'models',
                        'daformer_mit-b0.py')


def _segmentor_cfg(**backbone):
    cfg = Config.fromfile(B0_SEGMENTOR).model
    cfg.backbone.update(backbone)
    return cfg


def _build(cfg):
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(copy.deepcopy(cfg))


def _random_like(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g)
            for k, v in module.state_dict().items()}


@pytest.fixture(scope='module')
def mit_b0():
    """(mmseg-named random B0 weights, the same in SegFormer's names)."""
    backbone = _build(_segmentor_cfg()).backbone
    ours = _random_like(backbone)
    ref = mit_to_segformer(ours)
    # SegFormer's ImageNet files also hold the classifier
    ref['head.weight'] = torch.randn(1000, 256)
    ref['head.bias'] = torch.randn(1000)
    return ours, ref


def _assert_loaded(backbone, ours):
    sd = backbone.state_dict()
    assert sd.keys() == ours.keys()
    for k, v in ours.items():
        assert torch.equal(sd[k], v), k


@pytest.mark.parametrize('via', ['init_cfg', 'pretrained', 'prefix'])
def test_segformer_original_names_convert_on_the_fly(tmp_path, mit_b0, via):
    ours, ref = mit_b0
    assert not set(ours) & set(ref)  # nothing matches without converting
    path = str(tmp_path / 'mit_b0.pth')
    if via == 'prefix':  # a whole segmentor's file, backbone under a prefix
        torch.save({'state_dict': {'backbone.' + k: v
                                   for k, v in ref.items()}}, path)
        cfg = _segmentor_cfg(init_cfg=dict(type='Pretrained',
                                           checkpoint=path,
                                           prefix='backbone.'))
    elif via == 'pretrained':  # mmseg's model.pretrained (the reference's)
        torch.save(ref, path)
        cfg = _segmentor_cfg()
        cfg.pretrained = path
    else:
        torch.save(ref, path)
        cfg = _segmentor_cfg(init_cfg=dict(type='Pretrained',
                                           checkpoint=path))
    model = _build(cfg)
    model.init_weights()
    _assert_loaded(model.backbone, ours)


def test_mmseg_names_load_as_before(tmp_path, mit_b0):
    ours, _ = mit_b0
    path = str(tmp_path / 'mit_b0_mmseg.pth')
    torch.save({'state_dict': ours, 'meta': {}}, path)
    model = _build(_segmentor_cfg(
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    model.init_weights()
    _assert_loaded(model.backbone, ours)


def test_stock_leaves_the_backbone_random(tmp_path, mit_b0):
    """The row of the issue, with the fix removed: one warning, random
    backbone (what the patched path prevents)."""
    ours, ref = mit_b0
    path = str(tmp_path / 'mit_b0.pth')
    torch.save(ref, path)
    model = _build(_segmentor_cfg(
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    compat.remove_patches()
    try:
        model.init_weights()
    finally:
        compat.apply_patches()
    sd = model.backbone.state_dict()
    assert not any(torch.equal(sd[k], v) for k, v in ours.items())


def test_a_larger_mit_into_a_smaller_one_is_one_error(tmp_path, mit_b0):
    """B0 weights into a MiT with fewer blocks: every backbone tensor could
    be filled, the extra blocks would be dropped silently."""
    _, ref = mit_b0
    path = str(tmp_path / 'mit_b0.pth')
    torch.save(ref, path)
    model = _build(_segmentor_cfg(
        num_layers=[1, 2, 2, 2],
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(ValueError) as e:
        model.init_weights()
    msg = str(e.value)
    assert path in msg
    # the 18 tensors of stage 1's second block, in mmseg's (converted) names
    assert 'in the checkpoint but not in the model (18)' in msg
    assert "'layers.0.1.1.norm1.weight'" in msg
    assert 'not in the checkpoint' not in msg


def test_wider_mit_and_other_architecture_are_one_error(tmp_path, mit_b0):
    _, ref = mit_b0
    wide = {k: torch.cat([v, v]) if v.dim() else v for k, v in ref.items()}
    other = {'conv1.weight': torch.zeros(64, 3, 7, 7),
             'layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1)}
    for name, sd, expect in (
            ('wide.pth', wide, 'shape (checkpoint vs model)'),
            ('resnet.pth', other, "not in the checkpoint (")):
        path = str(tmp_path / name)
        torch.save(sd, path)
        model = _build(_segmentor_cfg(
            init_cfg=dict(type='Pretrained', checkpoint=path)))
        with pytest.raises(ValueError) as e:
            model.init_weights()
        assert path in str(e.value) and expect in str(e.value)
        if name == 'resnet.pth':  # none of SegFormer's or mmseg's names
            assert "'conv1.weight'" in str(e.value)
            assert '0 of ' in str(e.value)


def test_reference_training_checkpoint_names_the_converter(tmp_path, mit_b0):
    _, ref = mit_b0
    path = str(tmp_path / 'daformer_release.pth')
    torch.save({'state_dict': {'model.backbone.' + k: v
                               for k, v in ref.items()}}, path)
    model = _build(_segmentor_cfg(
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(ValueError, match='convert_reference_checkpoint.py'):
        model.init_weights()
    # its backbone alone, by prefix, converts
    model = _build(_segmentor_cfg(init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='model.backbone.')))
    model.init_weights()
    _assert_loaded(model.backbone, mit_b0[0])


def test_other_modules_keep_stock_pretrained(tmp_path):
    """Only MiT backbones are checked strictly; any other module loads
    through mmengine as before (strict=False)."""

    class Net(BaseModule):

        def __init__(self, init_cfg):
            super().__init__(init_cfg)
            self.lin = torch.nn.Linear(2, 2)

    w = torch.randn(2, 2)
    path = str(tmp_path / 'net.pth')
    torch.save({'lin.weight': w, 'extra.weight': w}, path)
    net = Net(dict(type='Pretrained', checkpoint=path))
    net.init_weights()
    assert torch.equal(net.lin.weight, w)


def test_odd_key_in_a_segformer_file_is_named(tmp_path, mit_b0):
    _, ref = mit_b0
    path = str(tmp_path / 'mit_b0_extra.pth')
    torch.save(dict(ref, cls_token=torch.zeros(1, 1, 32)), path)
    model = _build(_segmentor_cfg(
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(ValueError) as e:
        model.init_weights()
    msg = str(e.value)
    assert "in the checkpoint but not in the model (1): ['cls_token']" in msg
    assert 'not in the checkpoint (' not in msg  # the rest converted
