"""tools/misc/convert_reference_checkpoint.py: released DAFormer / HRDA / MIC
checkpoints (mmseg 0.x names) into ours, every tensor round-tripped.

The reference checkpoints are synthesised: our model is built from a config,
given random weights, and written in the reference's names by
``_ref_naming`` (derived from the reference's module definitions, not from
the converter's tables)."""
import copy
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import mmplugins  # noqa: F401
from _ref_naming import segmentor_to_ref, uda_to_ref
from _testutils import ROOT
from misc import convert_reference_checkpoint as tool

CONFIGS = osp.join(ROOT, 'configs')


def _config(tmp_path, base, **model):
    """A converted-config stand-in: ``base`` with ``model`` overrides."""
    path = tmp_path / f'{osp.splitext(base)[0]}_converted.py'
    overrides = ', '.join(f'{k}={v!r}' for k, v in model.items())
    path.write_text(f'_base_ = [{osp.join(CONFIGS, base)!r}]\n'
                    f'model = dict({overrides})\n')
    return str(path)


def _build(config):
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(copy.deepcopy(cfg.model))


def _randomise(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            sd[k] = torch.randn(v.shape, generator=g)
        else:  # num_batches_tracked, local_iter
            sd[k] = torch.randint(1, 1000, v.shape, generator=g)
    return sd


def _reference_file(tmp_path, ours, name='release.pth', drop=(), add=None,
                    imnet_head=True):
    head = {k[len('student.decode_head.'):]: torch.randn(v.shape)
            for k, v in ours.items() if k.startswith('student.decode_head.')}
    ref = uda_to_ref(ours, imnet_head=head if imnet_head else None)
    for k in drop:
        del ref[k]
    ref.update(add or {})
    path = tmp_path / name
    # what mmcv 1.x's runner writes around the weights
    torch.save(dict(meta=dict(iter=40000, mmcv_version='1.3.7',
                              CLASSES=('road', 'sidewalk'),
                              PALETTE=[[128, 64, 128], [244, 35, 232]],
                              config='uda = dict(...)', seed=0),
                    state_dict=ref,
                    optimizer=dict(state={}, param_groups=[dict(lr=6e-5)])),
               path)
    return str(path)


def _run(*args):
    return tool.main([str(a) for a in args])


def _assert_round_trip(out, config, ours):
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert ckpt['meta']['reference_iter'] == 40000
    assert set(ckpt['meta']) == {'converted_from', 'converter',
                                 'reference_iter'}
    model = _build(config)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    got = model.state_dict()
    for k, v in ours.items():
        want = torch.zeros_like(v) if k == 'local_iter' else v
        assert torch.equal(got[k], want), k


@pytest.fixture(scope='module')
def daformer(tmp_path_factory):
    """MIC(DAFormer) MiT-B0 with the feature distance (imnet_model) and a
    separate MIC teacher (mask_alpha != 'same')."""
    tmp = tmp_path_factory.mktemp('daformer')
    config = _config(tmp, 'mic_dual_aug.py', imnet_feature_dist_lambda=0.005,
                     mask_alpha=0.9)
    model = _build(config)
    assert model.imnet_model is not None and model.mic.teacher is not None
    return config, _randomise(model)


def test_mic_daformer_round_trip(tmp_path, daformer, capsys):
    config, ours = daformer
    src = _reference_file(tmp_path, ours)
    ref_keys = torch.load(src, weights_only=True)['state_dict']
    # the reference names, as the test derived them
    assert 'model.backbone.block1.0.attn.kv.weight' in ref_keys
    assert 'ema_model.decode_head.embed_layers.3.proj.weight' in ref_keys
    assert 'mic.teacher.ema_model.backbone.patch_embed4.proj.weight' in \
        ref_keys
    assert 'imnet_model.decode_head.conv_seg.weight' in ref_keys
    out = str(tmp_path / 'out' / 'ours.pth')
    assert _run(src, out, '--config', config) == 0
    _assert_round_trip(out, config, ours)
    stdout = capsys.readouterr().out
    assert 'dropped: ' in stdout and 'imnet_model.decode_head.' in stdout
    assert 'filled:  local_iter = 0' in stdout


@pytest.mark.parametrize('variant', ['with_config', 'without_config'])
def test_hrda_round_trip(tmp_path, variant):
    config = osp.join(CONFIGS, 'mic_hrda.py')
    model = _build(config)
    ours = _randomise(model, seed=1)
    src = _reference_file(tmp_path, ours)
    ref_keys = torch.load(src, weights_only=True)['state_dict']
    assert 'model.decode_head.scale_attention.fuse_layer.conv.weight' in \
        ref_keys
    assert 'model.decode_head.head.embed_layers.0.proj.weight' in ref_keys
    out = str(tmp_path / 'ours.pth')
    args = ['--config', config] if variant == 'with_config' else []
    assert _run(src, out, *args) == 0
    if variant == 'without_config':
        # no model to fill: local_iter is not written, the rest round-trips
        sd = torch.load(out, weights_only=True)['state_dict']
        assert set(sd) == set(ours) - {'local_iter'}
        sd['local_iter'] = torch.zeros(())
        torch.save(dict(meta=dict(reference_iter=40000, converter='',
                                  converted_from=''), state_dict=sd), out)
    _assert_round_trip(out, config, ours)


def test_no_ema_model_fills_the_teacher_from_the_student(tmp_path, daformer,
                                                         capsys):
    config, ours = daformer
    src = _reference_file(tmp_path, ours)
    ckpt = torch.load(src, weights_only=True)
    ckpt['state_dict'] = {k: v for k, v in ckpt['state_dict'].items()
                          if not k.startswith('ema_model.')}
    torch.save(ckpt, src)
    out = str(tmp_path / 'ours.pth')
    assert _run(src, out, '--config', config) == 0
    assert 'teacher = student' in capsys.readouterr().out
    sd = torch.load(out, weights_only=True)['state_dict']
    teacher = [k for k in sd if k.startswith('teacher.')]
    assert teacher
    for k in teacher:
        assert torch.equal(sd[k], ours['student.' + k[len('teacher.'):]]), k


def test_plain_segmentor_baseline_round_trip(tmp_path, daformer, capsys):
    """A source-only / target-only baseline: one mmseg 0.x segmentor
    (``backbone.``, ``decode_head.``), into a plain segmentor config."""
    config = _config(tmp_path, 'source_only.py', decode_head=dict(
        _delete_=True, type='DAFormerHead', in_channels=[32, 64, 160, 256],
        channels=64, embed_dims=64, num_classes=12,
        norm_cfg=dict(type='BN', requires_grad=True)))
    ours = _randomise(_build(config), seed=2)
    src = str(tmp_path / 'source_only.pth')
    torch.save(dict(meta=dict(iter=40000), state_dict=segmentor_to_ref(ours)),
               src)
    out = str(tmp_path / 'ours.pth')
    assert _run(src, out, '--config', config) == 0
    _assert_round_trip(out, config, ours)
    # the same file against a UDA config: one error saying why
    err = _fails(capsys, tmp_path, src, daformer[0])
    assert 'one plain segmentor' in err


def _fails(capsys, tmp_path, src, config, out_exists=True):
    out = tmp_path / 'ours.pth'
    if out_exists:
        out.write_bytes(b'previous')
    assert _run(src, out, *(['--config', config] if config else [])) == 1
    err = capsys.readouterr().err
    assert err.count('error: ') == 1
    assert src in err
    if out_exists:
        assert out.read_bytes() == b'previous'  # nothing written
    else:
        assert not out.exists()
    assert not list(tmp_path.glob('*.tmp'))
    return err


def test_partial_match_lists_keys_both_ways(tmp_path, daformer, capsys):
    config, ours = daformer
    src = _reference_file(
        tmp_path, ours, drop=['model.decode_head.conv_seg.bias'],
        add={'ema_model.decode_head.fuse_layer.bottleneck.conv.bias':
             torch.zeros(64)})
    err = _fails(capsys, tmp_path, src, config)
    assert "not in the checkpoint (1): ['student.decode_head.conv_seg.bias']" \
        in err
    assert ("in the checkpoint but not in the model (1): "
            "['teacher.decode_head.fuse_layer.bottleneck.conv.bias']") in err
    # a mis-shaped tensor (another number of classes)
    src = _reference_file(tmp_path, ours, name='classes.pth', add={
        'model.decode_head.conv_seg.bias': torch.zeros(19)})
    err = _fails(capsys, tmp_path, src, config)
    assert 'student.decode_head.conv_seg.bias: (19,) vs (12,)' in err


def test_unknown_reference_keys_listed_without_a_model(tmp_path, daformer,
                                                       capsys):
    _, ours = daformer
    src = _reference_file(tmp_path, ours, add={
        # an embedding other than 'mlp', an auxiliary head, a new module
        'model.decode_head.embed_layers.0.conv.weight': torch.zeros(1),
        'model.auxiliary_head.conv_seg.weight': torch.zeros(1),
        'discriminator.conv.weight': torch.zeros(1)})
    err = _fails(capsys, tmp_path, src, None, out_exists=False)
    assert '3 of ' in err
    for key in ('model.decode_head.embed_layers.0.conv.weight',
                'model.auxiliary_head.conv_seg.weight',
                'discriminator.conv.weight'):
        assert repr(key) in err


def test_other_architecture_is_one_error(tmp_path, capsys):
    # DAFormer's DeepLabV2 baseline: ResNet backbone, DLV2Head
    src = str(tmp_path / 'dlv2.pth')
    torch.save({'state_dict': {
        'model.backbone.conv1.weight': torch.zeros(64, 3, 7, 7),
        'model.decode_head.aspp_modules.0.weight': torch.zeros(19, 2048, 3,
                                                               3)}}, src)
    err = _fails(capsys, tmp_path, src, None)
    assert 'is not a DAFormer / HRDA / MIC checkpoint' in err
    assert "'model.backbone.conv1.weight'" in err
    assert 'only MiT backbones' in err
    # not a checkpoint at all
    bad = tmp_path / 'notes.pth'
    bad.write_text('not a checkpoint')
    err = _fails(capsys, tmp_path, str(bad), None)
    assert 'safe loader' in err


@pytest.mark.slow
def test_tools_test_evaluates_the_converted_checkpoint(tmp_path, daformer,
                                                       seg_demo_root):
    """``tools/test.py CONVERTED_CONFIG CONVERTED_CKPT``: its predictions are
    those of our model holding the original (never converted) weights."""
    import subprocess
    import sys

    import mmcv
    import numpy as np
    from mmseg.apis import inference_model
    config, ours = daformer
    ours = dict(ours)
    for k in ours:  # BN variances > 0, so the predictions are not NaN/flat
        if k.endswith('running_var'):
            ours[k] = ours[k].abs() + 0.5
    src = _reference_file(tmp_path, ours)
    out = str(tmp_path / 'ours.pth')
    assert _run(src, out, '--config', config) == 0
    ws = tmp_path / 'ws'
    (ws / 'data').mkdir(parents=True)
    (ws / 'data' / 'samsung_demo').symlink_to(seg_demo_root)
    pred_dir = tmp_path / 'pred'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'test.py'), config, out,
         '--work-dir', str(ws / 'work_dirs'), '--out', str(pred_dir),
         '--cfg-options', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        cwd=ws, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'mIoU' in proc.stdout + proc.stderr

    cfg = Config.fromfile(config)
    cfg.test_pipeline = [t for t in cfg.test_pipeline
                         if t['type'] != 'CheckSegLabel']
    model = _build(config)
    model.load_state_dict(ours)
    model.cfg = cfg
    model.eval()
    names = sorted(p.name for p in pred_dir.glob('*.png'))
    assert len(names) == 3
    classes = set()
    for name in names:
        with DefaultScope.overwrite_default_scope('mmseg'):
            want = inference_model(
                model, osp.join(seg_demo_root, 'val_target_image', name))
        want = want.pred_sem_seg.data[0].numpy()
        got = mmcv.imread(str(pred_dir / name), flag='unchanged')
        np.testing.assert_array_equal(got, want)
        classes |= set(np.unique(want).tolist())
    assert len(classes) > 2  # informative predictions
