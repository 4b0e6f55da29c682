"""tools/misc/convert_reference_config.py: DAFormer / MIC / MIC(HRDA)
reference configs (mmseg 0.x style, written here from scratch) -> mmplugins
configs."""
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

from _testutils import ROOT

TOOL = osp.join(ROOT, 'tools', 'misc', 'convert_reference_config.py')
sys.path.insert(0, osp.dirname(TOOL))
import convert_reference_config as crc  # noqa: E402

# ---- small reference-style configs (mmseg 0.x / mmcv 1.x keys) ----------
REF_RUNTIME = '''
log_config = dict(interval=50, img_interval=1000,
                  hooks=[dict(type='TextLoggerHook', by_epoch=False)])
dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
cudnn_benchmark = True
'''

REF_MODEL = '''
norm_cfg = dict(type='BN', requires_grad=True)
find_unused_parameters = True
model = dict(
    type='EncoderDecoder',
    pretrained='pretrained/{mit}.pth',
    backbone=dict(type='{mit}', style='pytorch'),
    decode_head=dict(
        type='DAFormerHead',
        in_channels={in_channels},
        in_index=[0, 1, 2, 3],
        channels={channels},
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        decoder_params=dict(
            embed_dims={channels},
            embed_cfg=dict(type='mlp', act_cfg=None, norm_cfg=None),
            embed_neck_cfg=dict(type='mlp', act_cfg=None, norm_cfg=None),
            fusion_cfg=dict(type='aspp', sep=True, dilations=(1, 6, 12, 18),
                            pool=False, act_cfg=dict(type='ReLU'),
                            norm_cfg=norm_cfg)),
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
'''

REF_DATA = '''
img_norm_cfg = dict(mean=[120.0, 110.0, 100.0], std=[60.0, 55.0, 50.0],
                    to_rgb=True)
crop_size = (384, 384)
src_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', img_scale=(960, 540)),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size=crop_size, pad_val=0, seg_pad_val=255),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_semantic_seg']),
]
tgt_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', img_scale=(768, 384)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size=crop_size, pad_val=0, seg_pad_val=255),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_semantic_seg']),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(768, 384), flip=False,
         transforms=[
             dict(type='Resize', keep_ratio=True),
             dict(type='RandomFlip'),
             dict(type='Normalize', **img_norm_cfg),
             dict(type='ImageToTensor', keys=['img']),
             dict(type='Collect', keys=['img']),
         ])
]
data = dict(
    samples_per_gpu=3,
    workers_per_gpu=2,
    train=dict(
        type='UDADataset',
        source=dict(type='GTADataset', data_root='data/gta5/',
                    img_dir='images', ann_dir='labels',
                    pipeline=src_pipeline),
        target=dict(type='CityscapesDataset', data_root='data/cs/',
                    img_dir='leftImg8bit/train', ann_dir='gtFine/train',
                    pipeline=tgt_pipeline)),
    val=dict(type='CityscapesDataset', data_root='data/cs/',
             img_dir='leftImg8bit/val', ann_dir='gtFine/val',
             pipeline=val_pipeline),
    test=dict(type='CityscapesDataset', data_root='data/cs/',
              img_dir='leftImg8bit/val', ann_dir='gtFine/val',
              pipeline=val_pipeline))
'''

REF_UDA = '''
uda = dict(
    type='DACS', source_only=False, alpha=0.99, pseudo_threshold=0.9,
    pseudo_weight_ignore_top=0, pseudo_weight_ignore_bottom=0,
    imnet_feature_dist_lambda=0, imnet_feature_dist_classes=None,
    imnet_feature_dist_scale_min_ratio=None, mix='class', blur=True,
    color_jitter_strength=0.2, color_jitter_probability=0.2,
    mask_mode=None, mask_alpha='same', mask_pseudo_threshold='same',
    mask_lambda=0, mask_generator=None, debug_img_interval=500,
    print_grad_magnitude=False)
use_ddp_wrapper = True
'''

REF_SCHEDULE = '''
optimizer = dict(type='AdamW', lr=4e-05, betas=(0.9, 0.999),
                 weight_decay=0.02)
optimizer_config = dict()
lr_config = dict(policy='poly', warmup='linear', warmup_iters={warmup},
                 warmup_ratio=1e-6, power=1.0, min_lr=0.0, by_epoch=False)
'''

# DAFormer: FD on the thing classes, alpha 0.999, RCS, custom lr keys
DAFORMER_TOP = '''
_base_ = ['runtime.py', 'model.py', 'data.py', 'uda.py', 'schedule.py']
seed = 7
uda = dict(alpha=0.999, imnet_feature_dist_lambda=0.005,
           imnet_feature_dist_classes=[6, 7, 11, 12, 13, 14, 15, 16, 17, 18],
           imnet_feature_dist_scale_min_ratio=0.75,
           pseudo_weight_ignore_top=15, pseudo_weight_ignore_bottom=120)
data = dict(train=dict(rare_class_sampling=dict(
    min_pixels=3000, class_temp=0.01, min_crop_ratio=0.5)))
optimizer_config = None
optimizer = dict(lr=6e-05, paramwise_cfg=dict(custom_keys=dict(
    head=dict(lr_mult=10.0), pos_block=dict(decay_mult=0.0),
    norm=dict(decay_mult=0.0))))
runner = dict(type='IterBasedRunner', max_iters={iters})
checkpoint_config = dict(by_epoch=False, interval={iters}, max_keep_ckpts=1)
evaluation = dict(interval=2500, metric='mIoU')
n_gpus = 1
gpu_model = 'SomeGPU'
name = 'gta2cs_daformer_test'
exp = 'basic'
name_uda = 'dacs_a999_fdthings_rcs0.01'
'''

# MIC on DAFormer: masked target images, 32 px blocks, 70 %, weight 1
MIC_EXTRA = '''
uda = dict(mask_mode='separatetrgaug', mask_alpha='same',
           mask_pseudo_threshold='same', mask_lambda=1,
           mask_generator=dict(type='block', mask_ratio=0.7,
                               mask_block_size=32, _delete_=True))
'''

# plain DACS: no FD, no RCS, a single file (no _base_)
DACS_TOP = '''
runner = dict(type='IterBasedRunner', max_iters=3000)
checkpoint_config = dict(by_epoch=False, interval=1000, max_keep_ckpts=2)
evaluation = dict(interval=1000, metric='mIoU')
seed = 0
'''

B0 = dict(mit='mit_b0', in_channels=[32, 64, 160, 256], channels=64)
B5 = dict(mit='mit_b5', in_channels=[64, 128, 320, 512], channels=256)


def write_family(root, family, model=B0, warmup=1500, iters=40000):
    """Write a reference config family under ``root``; return its path."""
    files = {
        'runtime.py': REF_RUNTIME,
        'model.py': REF_MODEL.format(**model),
        'data.py': REF_DATA,
        'uda.py': REF_UDA,
        'schedule.py': REF_SCHEDULE.format(warmup=warmup),
    }
    if family == 'dacs':  # one self-contained file, as experiments.py
        text = '\n'.join(files[k] for k in ('runtime.py', 'model.py',
                                            'data.py', 'uda.py',
                                            'schedule.py')) + DACS_TOP
        files = {'dacs.py': text}
        top = 'dacs.py'
    else:
        files['daformer.py'] = DAFORMER_TOP.format(iters=iters)
        top = 'daformer.py'
        if family == 'mic':
            files['mic.py'] = "_base_ = ['daformer.py']\n" + MIC_EXTRA
            top = 'mic.py'
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return str(root / top)


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def convert(tmp_path, family, **kwargs):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir(exist_ok=True)
    src = write_family(ref_dir, family, **kwargs)
    out = tmp_path / 'out' / f'{family}.py'
    conv = crc.convert_file(src, str(out))
    return preflight(out), conv, out


def preflight(out):
    """Load ``out`` and run tools/train.py's pre-flight on it (scope,
    every ``type=`` resolved in a registry); returns the Config."""
    from _toolbox import load_config, setup_toolbox
    cfg = load_config(str(out))
    setup_toolbox(cfg)
    return cfg


def build_model(cfg):
    """Build cfg.model without downloading / reading any checkpoint."""
    import mmplugins  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_cfg = cfg.model.copy()
    model_cfg.segmentor.backbone.init_cfg = None  # no weights file here
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(model_cfg)


# ---------------------------------------------------------------- families
def test_dacs_no_fd_no_rcs(tmp_path):
    cfg, conv, _ = convert(tmp_path, 'dacs')
    m = cfg.model
    assert m.type == 'UDASegmentor'
    assert m.alpha == 0.99 and m.pseudo_threshold == 0.9
    assert m.mix == 'class' and m.blur is True
    assert m.color_jitter_strength == 0.2
    # threshold meaning kept: the reference's 0.2 is copied, not inverted
    assert m.color_jitter_probability == 0.2
    assert m.imnet_feature_dist_lambda == 0
    assert m.imnet_feature_dist_classes is None
    assert 'imnet_feature_dist_scale_min_ratio' not in m  # None, FD off
    assert m.mask_mode is None and m.mask_lambda == 0
    assert m.vis_interval == 500  # debug_img_interval
    assert 'rare_class_sampling' not in cfg.train_dataloader.dataset
    # MiT-B0
    bb = m.segmentor.backbone
    assert bb.type == 'MixVisionTransformer'
    assert bb.embed_dims == 32 and bb.num_layers == [2, 2, 2, 2]
    assert bb.num_heads == [1, 2, 5, 8]
    assert bb.init_cfg == dict(type='Pretrained',
                               checkpoint='pretrained/mit_b0.pth')
    head = m.segmentor.decode_head
    assert head.type == 'DAFormerHead' and head.num_classes == 19
    assert head.embed_dims == 64 and head.channels == 64
    assert head.in_channels == [32, 64, 160, 256]
    assert head.fusion_cfg.sep is True
    assert tuple(head.fusion_cfg.dilations) == (1, 6, 12, 18)
    assert 'decoder_params' not in head
    # schedule: lr, max_iters, warm-up
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.optim_wrapper.constructor == 'UDAOptimWrapperConstructor'
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=4e-05, betas=(0.9, 0.999), weight_decay=0.02)
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=3000,
                                 val_interval=1000)
    assert cfg.param_scheduler == crc.poly_warmup_schedulers(
        3000, 1500, 1e-6, 1.0, 0.0)
    assert cfg.default_hooks.checkpoint.interval == 1000
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 2
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.default_hooks.logger.interval == 50
    assert cfg.randomness.seed == 0
    assert cfg.model_wrapper_cfg.type == 'MMSeparateDistributedDataParallel'
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    assert cfg.default_scope == 'mmseg'  # runtime inherited
    assert any('use_ddp_wrapper' in i for i in conv.ignored)
    assert conv.unsupported == []
    model = build_model(cfg)
    assert type(model).__name__ == 'UDASegmentor'
    assert model.imnet_model is None


def _check_data(cfg):
    pre = cfg.model.data_preprocessor
    assert pre.type == 'UDADataPreProcessor'
    assert pre.mean == [120.0, 110.0, 100.0]
    assert pre.std == [60.0, 55.0, 50.0]
    assert pre.bgr_to_rgb is True
    assert tuple(pre.size) == (384, 384)
    assert pre.pad_val == 0 and pre.seg_pad_val == 255
    assert 'target_mean' not in pre  # same normalisation on both domains
    dl = cfg.train_dataloader
    assert dl.batch_size == 3 and dl.num_workers == 2
    ds = dl.dataset
    assert ds.type == 'UDADataset'
    src, tgt = ds.source, ds.target
    assert src.type == 'GTADataset' and src.data_root == 'data/gta5/'
    assert src.data_prefix == dict(img_path='images', seg_map_path='labels')
    assert [s['type'] for s in src.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomCrop',
        'RandomFlip', 'PackSegInputs']
    assert src.pipeline[2] == dict(type='Resize', scale=(960, 540),
                                   keep_ratio=True)
    assert src.pipeline[3] == dict(type='RandomCrop', crop_size=(384, 384),
                                   cat_max_ratio=0.75)
    assert src.pipeline[4] == dict(type='RandomFlip', prob=0.5)
    # target labels are not loaded (never trained on)
    assert tgt.type == 'CityscapesDataset'
    assert tgt.data_prefix == dict(img_path='leftImg8bit/train')
    assert [s['type'] for s in tgt.pipeline] == [
        'LoadImageFromFile', 'Resize', 'RandomCrop', 'RandomFlip',
        'PackSegInputs']
    val = cfg.val_dataloader
    assert val.batch_size == 1 and val.dataset.test_mode is True
    assert val.dataset.data_prefix == dict(img_path='leftImg8bit/val',
                                           seg_map_path='gtFine/val')
    assert [s['type'] for s in val.dataset.pipeline] == [
        'LoadImageFromFile', 'Resize', 'LoadAnnotations', 'PackSegInputs']
    assert val.dataset.pipeline[1].scale == (768, 384)
    assert cfg.val_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])


def test_dacs_data_pipelines(tmp_path):
    cfg, _, _ = convert(tmp_path, 'dacs')
    _check_data(cfg)


def test_daformer_fd_things_rcs(tmp_path):
    cfg, conv, _ = convert(tmp_path, 'daformer', model=B5, iters=40000)
    m = cfg.model
    assert m.alpha == 0.999 and m.pseudo_threshold == 0.9
    assert m.imnet_feature_dist_lambda == 0.005
    assert m.imnet_feature_dist_classes == [6, 7, 11, 12, 13, 14, 15, 16,
                                            17, 18]
    assert m.imnet_feature_dist_scale_min_ratio == 0.75
    assert m.pseudo_weight_ignore_top == 15
    assert m.pseudo_weight_ignore_bottom == 120
    assert m.mask_mode is None
    assert cfg.train_dataloader.dataset.rare_class_sampling == dict(
        min_pixels=3000, class_temp=0.01, min_crop_ratio=0.5)
    bb = m.segmentor.backbone
    assert bb.embed_dims == 64 and bb.num_layers == [3, 6, 40, 3]
    assert m.segmentor.decode_head.embed_dims == 256
    assert m.segmentor.decode_head.in_channels == [64, 128, 320, 512]
    ow = cfg.optim_wrapper
    assert ow.optimizer.lr == 6e-05 and ow.optimizer.weight_decay == 0.02
    # the reference's keys, plus mmseg 1.x's names of MiT's stage norms
    # (norm1..4 in mmseg 0.x, matched by 'norm' there)
    no_decay = dict(decay_mult=0.0)
    assert ow.paramwise_cfg.custom_keys == {
        'head': dict(lr_mult=10.0), 'pos_block': no_decay, 'norm': no_decay,
        **{f'backbone.layers.{i}.2.': no_decay for i in range(4)}}
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_cfg.val_interval == 2500
    assert cfg.default_hooks.checkpoint.interval == 40000
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 1
    assert cfg.randomness.seed == 7
    _check_data(cfg)
    ignored = '\n'.join(conv.ignored)
    for key in ('name=', 'exp=', 'n_gpus=', 'gpu_model=', 'name_uda=',
                'print_grad_magnitude=False', 'source_only=False',
                'backbone.style='):
        assert key in ignored, key
    assert conv.unsupported == []


def test_param_scheduler_matches_schedule_40k():
    """The emitted warm-up + poly has schedule_40k.py's structure."""
    base = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'schedules',
                                    'schedule_40k.py'))
    assert crc.poly_warmup_schedulers(40000, 1500, 1e-6, 1.0, 0.0) == \
        base.param_scheduler


def test_daformer_mit_b5_builds(tmp_path):
    cfg, _, _ = convert(tmp_path, 'daformer', model=B5)
    model = build_model(cfg)
    assert model.imnet_model is not None  # FD on
    assert model.fd_classes == [6, 7, 11, 12, 13, 14, 15, 16, 17, 18]
    assert model.student.backbone.embed_dims == 64


def test_mic_daformer(tmp_path):
    cfg, conv, out = convert(tmp_path, 'mic', iters=2000, warmup=150)
    m = cfg.model
    assert m.mask_mode == 'separatetrgaug'
    assert m.mask_alpha == 'same' and m.mask_pseudo_threshold == 'same'
    assert m.mask_lambda == 1
    assert m.mask_generator == dict(type='block', mask_ratio=0.7,
                                    mask_block_size=32)
    assert m.imnet_feature_dist_lambda == 0.005  # DAFormer recipe kept
    assert cfg.param_scheduler[0] == dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=150 + 1)
    assert cfg.param_scheduler[-1]['end'] == 2000 + 1
    assert cfg.train_cfg.max_iters == 2000
    text = out.read_text()
    assert text.startswith('# Converted from')
    assert 'end=150 + 1' in text and 'end=2000 + 1' in text
    assert 'UNSUPPORTED' not in text
    model = build_model(cfg)
    assert model.mask_lambda == 1 and model.mic is not None
    assert (model.mask_block_size, model.mask_ratio) == (32, 0.7)
    # the optimizer: student only, reference lr, no decay on MiT's norms
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        ow = build_optim_wrapper(model, cfg.optim_wrapper)
    stage_norm = model.student.backbone.layers[0][2].weight
    head_w = model.student.decode_head.conv_seg.weight
    for p, lr, wd in ((stage_norm, 6e-05, 0.0), (head_w, 6e-04, 0.02)):
        group, = [g for g in ow.optimizer.param_groups
                  if any(q is p for q in g['params'])]
        assert group['weight_decay'] == pytest.approx(wd)
        assert group.get('initial_lr', group['lr']) == pytest.approx(lr)


def test_mask_mode_none_turns_mic_off(tmp_path):
    """Reference: mask_mode=None is the MIC switch, whatever mask_lambda."""
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'mic')
    (ref_dir / 'off.py').write_text(
        "_base_ = ['mic.py']\nuda = dict(mask_mode=None)\n")
    out = tmp_path / 'off_out.py'
    crc.convert_file(str(ref_dir / 'off.py'), str(out))
    cfg = Config.fromfile(str(out))
    assert cfg.model.mask_mode is None and cfg.model.mask_lambda == 0
    assert build_model(cfg).mic is None


def test_source_only_keeps_mic_on_source_images(tmp_path):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'mic')
    (ref_dir / 'src_only.py').write_text(
        "_base_ = ['mic.py']\nuda = dict(source_only=True)\n")
    out = tmp_path / 'src_only_out.py'
    crc.convert_file(str(ref_dir / 'src_only.py'), str(out))
    m = preflight(out).model
    # reference (MIC exp 85, "MIC for supervised training"): no teacher and
    # no mix, but MIC still masks the source images against their labels
    assert m.source_only is True
    assert m.mask_mode == 'separatetrgaug' and m.mask_lambda == 1
    assert m.mix == 'class'  # the reference keeps the key; source_only wins
    model = build_model(Config.fromfile(str(out)))
    assert model.source_only and model.teacher is None
    assert model.mask_lambda == 1


def test_separate_mic_teacher_without_threshold_builds(tmp_path):
    """MIC exp 83: mask_pseudo_threshold=None (a separate MIC teacher,
    pixel weight 1) is copied and builds (it used to fail at build)."""
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'mic')
    (ref_dir / 'pn.py').write_text(
        "_base_ = ['mic.py']\nuda = dict(mask_pseudo_threshold=None)\n")
    out = tmp_path / 'pn_out.py'
    crc.convert_file(str(ref_dir / 'pn.py'), str(out))
    cfg = preflight(out)
    assert cfg.model.mask_pseudo_threshold is None
    model = build_model(cfg)
    assert model.mic is not None and model.mic.mask_pseudo_threshold is None


def test_crop_pseudo_margins_move_to_the_target_dataset(tmp_path):
    """MIC(HRDA)'s key: data.train.target.crop_pseudo_margins -> the
    target of UDADataset, which builds/packs the mask in its pipeline."""
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'mic')
    margins = "data = dict(train=dict(target=dict(" \
        "crop_pseudo_margins=[30, 240, 30, 30])))\n"
    (ref_dir / 'hr.py').write_text(
        "_base_ = ['mic.py']\n" + margins +
        'uda = dict(pseudo_weight_ignore_top=0, '
        'pseudo_weight_ignore_bottom=0)\n')
    out = tmp_path / 'hr_out.py'
    conv = crc.convert_file(str(ref_dir / 'hr.py'), str(out))
    assert ('data.train.target.crop_pseudo_margins -> train_dataloader.'
            'dataset.target.crop_pseudo_margins') in conv.mapped
    cfg = Config.fromfile(str(out))
    target = cfg.train_dataloader.dataset.target
    assert target.crop_pseudo_margins == [30, 240, 30, 30]
    assert 'crop_pseudo_margins' not in cfg.train_dataloader.dataset.source
    from mmplugins.datasets.uda_dataset import UDADataset
    steps = UDADataset._with_pseudo_margins(target, 'target')['pipeline']
    types = [s['type'] for s in steps]
    assert types[:2] == ['LoadImageFromFile', 'ValidPseudoMask']
    assert types[-1] == 'PackValidPseudoMask'
    assert steps[1]['margins'] == [30, 240, 30, 30]
    # DAFormer's ignore_top/bottom rows too: the reference asserts
    (ref_dir / 'both.py').write_text("_base_ = ['mic.py']\n" + margins)
    with pytest.raises(crc.ConversionError) as e:
        crc.convert_file(str(ref_dir / 'both.py'), str(tmp_path / 'b.py'))
    assert 'uda.pseudo_weight_ignore_top=15' in str(e.value)
    assert 'uda.pseudo_weight_ignore_bottom=120' in str(e.value)


# MIC(HRDA) on the MIC family above (MiT-B0, 384x384 crops, FD on): a
# 192x192 detail crop, non-default head weights and a small attention head;
# no pretrained weights (the model is built below)
HRDA_EXTRA = '''
model = dict(
    type='HRDAEncoderDecoder',
    pretrained=None,
    scales=[0.5, 1],
    hr_crop_size=[192, 192],
    hr_slide_inference=True,
    hr_slide_overlapping=False,
    crop_coord_divisible=16,
    blur_hr_crop=False,
    feature_scale=0.5,
    decode_head=dict(
        type='HRDAHead',
        single_scale_head='DAFormerHead',
        attention_classwise=False,
        hr_loss_weight=0.2,
        lr_loss_weight=0.05,
        attention_embed_dim=32,
        fixed_attention=None,
        debug_output_attention=False),
    test_cfg=dict(mode='slide', batched_slide=True, stride=[192, 192],
                  crop_size=[384, 384]))
uda = dict(pseudo_weight_ignore_top=0, pseudo_weight_ignore_bottom=0,
           mask_generator=dict(type='block', mask_ratio=0.6,
                               mask_block_size=48, _delete_=True))
data = dict(train=dict(
    target=dict(crop_pseudo_margins=[12, 60, 8, 8]),
    rare_class_sampling=dict(min_crop_ratio=2.0)))
'''


def _hrda_ref(tmp_path, extra=''):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir(exist_ok=True)
    write_family(ref_dir, 'mic', iters=2000, warmup=150)
    (ref_dir / 'hrda.py').write_text("_base_ = ['mic.py']\n" + HRDA_EXTRA)
    if not extra:
        return ref_dir / 'hrda.py'
    (ref_dir / 'variant.py').write_text("_base_ = ['hrda.py']\n" +
                                         textwrap.dedent(extra))
    return ref_dir / 'variant.py'


def test_mic_hrda_converts_loads_and_builds(tmp_path):
    src = _hrda_ref(tmp_path)
    out = tmp_path / 'out' / 'mic_hrda.py'
    conv = crc.convert_file(str(src), str(out))
    assert conv.unsupported == []
    cfg = Config.fromfile(str(out))
    seg = cfg.model.segmentor
    assert seg.type == 'HRDAEncoderDecoder'
    assert seg.scales == [0.5, 1]
    assert seg.hr_crop_size == (192, 192)
    assert seg.hr_slide_inference is True
    assert seg.hr_slide_overlapping is False
    assert seg.crop_coord_divisible == 16
    assert seg.blur_hr_crop is False
    assert seg.feature_scale == 0.5
    assert seg.test_cfg == dict(mode='slide', crop_size=(384, 384),
                                stride=(192, 192), batch_size=None)
    assert seg.backbone.init_cfg is None  # pretrained=None
    assert seg.backbone.embed_dims == 32  # MiT-B0
    head = seg.decode_head
    assert head.type == 'HRDAHead'
    assert head.single_scale_head == 'DAFormerHead'
    assert head.attention_classwise is False
    assert head.hr_loss_weight == 0.2 and head.lr_loss_weight == 0.05
    assert head.attention_embed_dim == 32
    assert head.fixed_attention is None
    # the DAFormer part, converted as for a plain DAFormerHead
    assert head.embed_dims == 64 and head.channels == 64
    assert head.in_channels == [32, 64, 160, 256]
    assert head.fusion_cfg.sep is True
    assert 'decoder_params' not in head
    assert 'debug_output_attention' not in head
    m = cfg.model
    assert m.mask_generator == dict(type='block', mask_ratio=0.6,
                                    mask_block_size=48)
    assert m.pseudo_weight_ignore_top == 0
    assert m.imnet_feature_dist_lambda == 0.005
    ds = cfg.train_dataloader.dataset
    assert ds.target.crop_pseudo_margins == [12, 60, 8, 8]
    assert ds.rare_class_sampling.min_crop_ratio == 2.0
    assert 'model.test_cfg.batched_slide=True -> model.segmentor.test_cfg.' \
        'batch_size=None' in conv.mapped
    assert any(i.startswith('model.decode_head.debug_output_attention=False')
               for i in conv.ignored)
    model = build_model(cfg)
    student = model.student
    assert type(student).__name__ == 'HRDAEncoderDecoder'
    assert student.scales == [0.5, 1.0]
    assert student.hr_crop_size == (192, 192)
    assert student.hr_slide_overlapping is False
    assert student.crop_coord_divisible == 16
    assert student.feature_scale == 0.5
    assert student.test_cfg['batch_size'] is None
    dh = student.decode_head
    assert type(dh).__name__ == 'HRDAHead'
    assert (dh.hr_loss_weight, dh.lr_loss_weight) == (0.2, 0.05)
    assert dh.attention_classwise is False
    assert dh.scale_attention.conv_seg.out_channels == 1  # not class-wise
    assert dh.scale_attention.channels == 32
    assert dh.head.channels == 64 and dh.head.num_classes == 19
    assert model.imnet_model is not None  # FD on the context features
    assert (model.mask_block_size, model.mask_ratio) == (48, 0.6)


def test_hrda_feature_scale_unset(tmp_path):
    """The reference's default feature_scale=1 (FD on the detail crop) is
    unsupported with the feature distance on, no effect with it off."""
    text = HRDA_EXTRA.replace('    feature_scale=0.5,\n', '')
    assert text != HRDA_EXTRA
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'mic')
    (ref_dir / 'fd.py').write_text("_base_ = ['mic.py']\n" + text)
    with pytest.raises(crc.ConversionError) as e:
        crc.convert_file(str(ref_dir / 'fd.py'), str(tmp_path / 'o.py'))
    assert 'model.feature_scale (unset)=1 has no equivalent' in str(e.value)
    (ref_dir / 'nofd.py').write_text(
        "_base_ = ['fd.py']\nuda = dict(imnet_feature_dist_lambda=0)\n")
    out = tmp_path / 'nofd_out.py'
    conv = crc.convert_file(str(ref_dir / 'nofd.py'), str(out))
    assert conv.unsupported == []
    assert any(i.startswith('model.feature_scale (unset)=1')
               for i in conv.ignored)
    assert 'feature_scale' not in Config.fromfile(str(out)).model.segmentor


# ------------------------------------------------------------- bad input
BAD = '''
_base_ = ['daformer.py']
uda = dict(type='AdvSeg', print_grad_magnitude=True)
model = dict(type='HRDAEncoderDecoder', scales=[1, 0.5],
             hr_crop_size=(192, 192), crop_coord_divisible=8,
             feature_scale='all',
             decode_head=dict(type='HRDAHead', single_scale_head='UPerHead',
                              hr_loss_weight=0.1))
data = dict(train=dict(sync_crop_size=[384, 384], my_sampler=1))
'''


def _bad_ref(tmp_path):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    (ref_dir / 'bad.py').write_text(BAD)
    return ref_dir / 'bad.py'


def test_unsupported_keys_one_error_naming_each(tmp_path):
    src = _bad_ref(tmp_path)
    out = tmp_path / 'bad_out.py'
    res = run_tool(src, out)
    assert res.returncode == 1
    assert not out.exists()
    err = res.stderr
    assert err.count('error:') == 1, err
    assert 'uda.print_grad_magnitude=True has no equivalent' in err
    assert "uda.type='AdvSeg' has no equivalent" in err
    assert "model.decode_head.single_scale_head='UPerHead' has no " \
        'equivalent' in err
    assert "model.feature_scale='all' has no equivalent" in err
    assert 'data.train.my_sampler=1 has no equivalent' in err
    assert 'sync_crop_size' not in err  # mapped now
    assert "model.type='HRDAEncoderDecoder'" not in err  # mapped now
    assert '--allow-unsupported' in err
    assert 'Traceback' not in err


@pytest.mark.parametrize('extra, expected', [
    # a head HRDAHead cannot hold (the reference raises NotImplementedError)
    ("model = dict(decode_head=dict(single_scale_head='UPerHead'))",
     "model.decode_head.single_scale_head='UPerHead'"),
    # no detail crop (the reference's default hr_crop_size=None)
    ('model = dict(hr_crop_size=None)', 'model.hr_crop_size=None'),
    # a detail crop that is not a multiple of the context grid
    ('model = dict(hr_crop_size=(196, 196))',
     'model.crop_coord_divisible/hr_crop_size=(16, (196, 196))'),
    ('model = dict(scales=[1, 0.5, 0.25])', 'model.scales=[1, 0.5, 0.25]'),
    ("model = dict(feature_scale='all')", "model.feature_scale='all'"),
    ('model = dict(feature_scale=1)', 'model.feature_scale=1'),
    ('model = dict(decode_head=dict(hr_loss_weight=0.5, '
     'lr_loss_weight=0.5))', 'model.decode_head.hr_loss_weight=0.5'),
    # HRDAHead without HRDAEncoderDecoder
    ("model = dict(type='EncoderDecoder')",
     "model.decode_head.type='HRDAHead'"),
])
def test_unsupported_hrda_variants(tmp_path, extra, expected):
    src = _hrda_ref(tmp_path, extra)
    with pytest.raises(crc.ConversionError) as e:
        crc.convert_file(str(src), str(tmp_path / 'o.py'))
    assert f'{expected} has no equivalent' in str(e.value)
    assert not (tmp_path / 'o.py').exists()


def test_allow_unsupported_writes_comment_block(tmp_path):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    (ref_dir / 'grad.py').write_text(
        "_base_ = ['daformer.py']\n"
        'uda = dict(print_grad_magnitude=True)\n'
        'data = dict(train=dict(my_sampler=[1, 2]))\nmy_flag = 3\n')
    out = tmp_path / 'grad_out.py'
    res = run_tool(ref_dir / 'grad.py', out, '--allow-unsupported')
    assert res.returncode == 0, res.stderr
    assert 'UNSUPPORTED: uda.print_grad_magnitude=True' in res.stdout
    text = out.read_text()
    head = text[:text.index('_base_ =')]
    block = head[head.index('# UNSUPPORTED'):]
    assert '#   uda.print_grad_magnitude=True has no equivalent' in block
    assert '#   data.train.my_sampler=[1, 2]' in block
    assert '#   my_flag=3 has no equivalent' in block  # unknown top-level
    assert '# Ignored:' in head and '# Mapped:' in head
    cfg = Config.fromfile(str(out))
    assert cfg.model.type == 'UDASegmentor'
    assert 'print_grad_magnitude' not in cfg.model
    build_model(cfg)


def test_missing_input_file(tmp_path):
    res = run_tool(tmp_path / 'nope.py', tmp_path / 'out.py')
    assert res.returncode == 1
    assert 'reference config not found' in res.stderr
    assert 'nope.py' in res.stderr and 'Traceback' not in res.stderr


def test_unloadable_and_non_uda_configs(tmp_path):
    bad = tmp_path / 'mmcv1.py'
    bad.write_text('import mmcv\n'
                   'model = dict(rank=mmcv.runner.get_dist_info())\n')
    res = run_tool(bad, tmp_path / 'o.py')
    assert res.returncode == 1
    assert 'Config.fromfile' in res.stderr and 'mmcv 1.x' in res.stderr
    plain = tmp_path / 'plain.py'
    plain.write_text('model = dict(type="EncoderDecoder")\n')
    with pytest.raises(crc.ConversionError, match='no top-level `data`'):
        crc.convert_file(str(plain), str(tmp_path / 'o.py'))


def test_fp16_accumulation_resume_and_missing_seed(tmp_path):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    (ref_dir / 'amp.py').write_text(textwrap.dedent('''
        _base_ = ['daformer.py']
        optimizer_config = dict(_delete_=True,
                                type='GradientCumulativeFp16OptimizerHook',
                                loss_scale=512.0, cumulative_iters=2,
                                grad_clip=dict(max_norm=10.0, norm_type=2))
        resume_from = 'work_dirs/x/iter_1000.pth'
        model = dict(test_cfg=dict(mode='slide', batched_slide=True,
                                   crop_size=(384, 384), stride=(256, 256)))
        '''))
    text = (ref_dir / 'daformer.py').read_text()
    (ref_dir / 'daformer.py').write_text(text.replace('seed = 7\n', ''))
    out = tmp_path / 'amp_out.py'
    crc.convert_file(str(ref_dir / 'amp.py'), str(out))
    cfg = Config.fromfile(str(out))
    ow = cfg.optim_wrapper
    assert ow.type == 'AmpOptimWrapper' and ow.loss_scale == 512.0
    assert ow.accumulative_counts == 2
    assert ow.clip_grad == dict(max_norm=10.0, norm_type=2)
    assert cfg.load_from == 'work_dirs/x/iter_1000.pth' and cfg.resume
    assert cfg.randomness.seed is None  # reference: random seed
    seg = cfg.model.segmentor
    assert seg.type == 'BatchedSlideEncoderDecoder'
    assert seg.test_cfg == dict(mode='slide', crop_size=(384, 384),
                                stride=(256, 256), batch_size=None)


# ------------------------------------------------- issue 20: entrance rows
def test_mic_converted_config_passes_preflight(tmp_path):
    """MIC's mask_generator=dict(type='block') resolves in the registry the
    pre-flight reads (it used to fail with "Unknown type 'block'")."""
    cfg, _, _ = convert(tmp_path, 'mic')  # convert() pre-flights
    assert cfg.model.mask_generator.type == 'block'


def test_preflight_rejects_an_unknown_mask_generator(tmp_path):
    _, _, out = convert(tmp_path, 'mic')
    from _toolbox import load_config, setup_toolbox
    cfg = load_config(str(out), {'model.mask_generator.type': 'blok'})
    with pytest.raises(KeyError, match="'blok'.*mask_generator"):
        setup_toolbox(cfg)


def test_decode_head_gets_the_reference_classifier_init(tmp_path):
    """mmseg 0.x: normal_init(conv_seg, std=0.01), bias 0 -- the converter
    must not write init_cfg=None (PyTorch's default init, std ~0.036 and a
    non-zero bias, for a 64-channel 1x1 conv)."""
    import torch
    cfg, _, _ = convert(tmp_path, 'dacs')
    assert 'init_cfg' not in cfg.model.segmentor.decode_head
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    conv = model.student.decode_head.conv_seg
    assert conv.bias.abs().max().item() == 0
    assert conv.weight.std().item() == pytest.approx(0.01, rel=0.15)


def _baseline(tmp_path, target_only):
    """A source-only / target-only baseline as experiments.py writes it:
    no `uda` section, data.train a plain dataset."""
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    text = (ref_dir / 'daformer.py').read_text()
    text = re.sub(r'\nuda = dict\(.*?\)\n(?=data)', '\n', text, flags=re.S)
    (ref_dir / 'daformer.py').write_text(text.replace("'uda.py', ", ''))
    train = ("dict(type='CityscapesDataset', data_root='data/cs/', "
             "img_dir='leftImg8bit/train', ann_dir='gtFine/train', "
             'pipeline={{_base_.src_pipeline}})' if target_only else
             "dict(type='GTADataset', data_root='data/gta5/', "
             "img_dir='images', ann_dir='labels', "
             'pipeline={{_base_.src_pipeline}})')
    (ref_dir / 'base.py').write_text(
        "_base_ = ['daformer.py']\n"
        f'data = dict(train=dict(_delete_=True, **{train}))\n')
    return ref_dir / 'base.py'


@pytest.mark.parametrize('target_only', [False, True])
def test_baselines_convert_to_a_plain_segmentor(tmp_path, target_only):
    src = _baseline(tmp_path, target_only)
    text = src.read_text() + (src.parent / 'daformer.py').read_text()
    assert '\nuda = ' not in text and 'uda.py' not in text
    out = tmp_path / 'base_out.py'
    conv = crc.convert_file(str(src), str(out))
    cfg = preflight(out)
    m = cfg.model
    assert m.type == 'EncoderDecoder' and 'segmentor' not in m
    assert m.data_preprocessor.type == 'SegDataPreProcessor'
    assert m.data_preprocessor.mean == [120.0, 110.0, 100.0]
    ds = cfg.train_dataloader.dataset
    assert ds.type == ('CityscapesDataset' if target_only else 'GTADataset')
    assert ds.data_prefix.seg_map_path == ('gtFine/train' if target_only
                                           else 'labels')
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert not any('model.segmentor.' in line for line in conv.mapped)
    import mmplugins  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    m = cfg.model.copy()
    m.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(m)
    assert type(model).__name__ == 'EncoderDecoder'


def test_launcher_metadata_and_unread_keys_are_ignored_with_a_note(tmp_path):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    (ref_dir / 'launched.py').write_text(
        "_base_ = ['daformer.py']\ngit_rev = 'abc123'\n"
        "uda = dict(imnet_feature_dist_scale_method='ratio')\n")
    out = tmp_path / 'l_out.py'
    conv = crc.convert_file(str(ref_dir / 'launched.py'), str(out))
    notes = '\n'.join(conv.ignored)
    assert "git_rev='abc123': ignored (no effect: metadata" in notes
    assert "uda.imnet_feature_dist_scale_method='ratio': ignored" in notes
    assert 'read nowhere' in notes
    assert not conv.unsupported


def test_unknown_uda_key_is_refused_not_dropped(tmp_path):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    (ref_dir / 'u.py').write_text(
        "_base_ = ['daformer.py']\nuda = dict(my_new_weight=0.3)\n")
    with pytest.raises(crc.ConversionError,
                       match='uda.my_new_weight=0.3 has no equivalent'):
        crc.convert_file(str(ref_dir / 'u.py'), str(tmp_path / 'o.py'))
    assert not (tmp_path / 'o.py').exists()


def test_infinite_class_temp_is_written_loadable(tmp_path):
    """DAFormer exp 5 samples classes uniformly with class_temp=math.inf."""
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    (ref_dir / 'inf.py').write_text(
        "_base_ = ['daformer.py']\ndata = dict(train=dict("
        "rare_class_sampling=dict(class_temp=float('inf'))))\n")
    out = tmp_path / 'inf_out.py'
    crc.convert_file(str(ref_dir / 'inf.py'), str(out))
    assert "class_temp=float('inf')" in out.read_text()
    rcs = preflight(out).train_dataloader.dataset.rare_class_sampling
    assert rcs.class_temp == float('inf')


def test_missing_base_names_the_file_and_writes_nothing(tmp_path):
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    (ref_dir / 'orphan.py').write_text("_base_ = ['gone_runtime.py']\n")
    out = tmp_path / 'o.py'
    res = run_tool(ref_dir / 'orphan.py', out)
    assert res.returncode == 1 and not out.exists()
    assert res.stderr.count('error:') == 1
    assert 'orphan.py' in res.stderr and 'gone_runtime.py' in res.stderr
    assert 'Traceback' not in res.stderr


def test_sync_crop_size_maps_to_the_dataset_and_the_pad_size(tmp_path):
    """HRDA's small-crop / ACDC configs: source and target cropped at one
    box after their pipelines; batches are of that size."""
    ref_dir = tmp_path / 'ref'
    ref_dir.mkdir()
    write_family(ref_dir, 'daformer')
    (ref_dir / 'sync.py').write_text(
        "_base_ = ['daformer.py']\n"
        'data = dict(train=dict(sync_crop_size=(128, 96)))\n')
    out = tmp_path / 'sync_out.py'
    crc.convert_file(str(ref_dir / 'sync.py'), str(out))
    cfg = preflight(out)
    assert cfg.train_dataloader.dataset.sync_crop_size == (128, 96)
    assert cfg.model.data_preprocessor.size == (128, 96)


def test_misaligned_crop_corners_convert_as_the_reference(tmp_path):
    """The reference's default crop_coord_divisible=1 truncates the crop
    box to the context grid: converted with allow_misaligned_crop=True."""
    src = _hrda_ref(tmp_path, 'model = dict(crop_coord_divisible=1)')
    out = tmp_path / 'mis.py'
    conv = crc.convert_file(str(src), str(out))
    seg = preflight(out).model.segmentor
    assert seg.crop_coord_divisible == 1 and seg.allow_misaligned_crop
    assert any('allow_misaligned_crop=True' in m for m in conv.mapped)
    aligned = crc.convert_file(str(_hrda_ref(tmp_path)),
                               str(tmp_path / 'al.py'))
    assert 'allow_misaligned_crop' not in Config.fromfile(
        str(tmp_path / 'al.py')).model.segmentor
    assert not aligned.unsupported
