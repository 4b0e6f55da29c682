"""The DAFormer / MIC configs against the reference recipe (lhoyer/DAFormer,
lhoyer/MIC on mmseg 0.x / mmcv 1.x), and the demo configs against the real
recipes they scale down.

* classifier init: ``conv_seg`` ~ Normal(0, 0.01), bias 0 (mmseg's
  BaseDecodeHead default), in the student and in the EMA teacher;
* learning rate: mmcv 1.x's ``poly`` policy with linear warm-up, computed
  here in closed form and compared with the schedulers built and stepped
  the way mmengine's Runner / ParamSchedulerHook do;
* weight decay / lr multipliers: derived for every student parameter from
  its module type and its place in the model, compared with the optimizer
  group it landed in;
* the demo configs: the documented scale-downs and nothing else.
"""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = ['configs/daformer_uda.py', 'configs/mic_dual_aug.py']
REAL = ['configs/real/daformer_gta2cs.py', 'configs/real/mic_gta2cs.py',
        'configs/real/daformer_samsung.py',
        'configs/real/mic_dual_aug_samsung.py']
# demo -> the real recipe it scales down
PAIRS = {'configs/daformer_uda.py': 'configs/real/daformer_samsung.py',
         'configs/mic_dual_aug.py': 'configs/real/mic_dual_aug_samsung.py'}


def _cfg(path):
    return Config.fromfile(osp.join(ROOT, path))


def _build_uda(path):
    import mmplugins  # noqa: F401  (registers the UDA modules)
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = _cfg(path)
    # the real configs load ImageNet MiT weights that cannot be downloaded
    # here: initialise the backbone as the demo does (the head is what the
    # init test is about)
    cfg.model.segmentor.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmseg'):
        return cfg, MODELS.build(cfg.model)


# --------------------------------------------------------------- row 4: init
@pytest.mark.parametrize('path', DEMO + REAL)
def test_classifier_init_is_normal_001_in_student_and_teacher(path):
    torch.manual_seed(0)
    cfg, model = _build_uda(path)
    model.init_weights()
    heads = {'student': model.student.decode_head,
             'teacher': model.teacher.decode_head}
    mic = getattr(model, 'mic', None)
    if mic is not None and getattr(mic, 'teacher', None) is not None:
        heads['mic teacher'] = mic.teacher.decode_head
    for name, head in heads.items():
        w = head.conv_seg.weight.detach().double().flatten()
        b = head.conv_seg.bias.detach()
        n = w.numel()
        assert n == (cfg.model.segmentor.decode_head.num_classes *
                     cfg.model.segmentor.decode_head.channels)
        # sample std of n iid N(0, s^2) draws: standard error s / sqrt(2n);
        # 5 standard errors (PyTorch's default init has std
        # 1 / sqrt(3 * channels) >= 0.036 here, > 2.5x the target)
        std, sigma = w.std().item(), 0.01
        assert abs(std - sigma) < 5 * sigma / math.sqrt(2 * n), (name, std)
        assert abs(w.mean().item()) < 5 * sigma / math.sqrt(n), name
        assert torch.count_nonzero(b) == 0, name
    # the teacher starts as an exact copy of the student
    torch.testing.assert_close(model.teacher.decode_head.conv_seg.weight,
                               model.student.decode_head.conv_seg.weight,
                               rtol=0, atol=0)


# ---------------------------------------------------------- row 5: schedule
def reference_lr(base, t, max_iters, warmup_iters, warmup_ratio=1e-6,
                 power=1.0):
    """mmcv 1.x PolyLrUpdaterHook (min_lr 0) with linear warm-up, at
    0-based iteration ``t`` (the lr of the update of iteration t)."""
    lr = base * (1 - t / max_iters)**power
    if t < warmup_iters:
        k = (1 - t / warmup_iters) * (1 - warmup_ratio)
        lr = lr * (1 - k)
    return lr


def _schedule_lrs(cfg, steps):
    """Optimizer + schedulers built from ``cfg`` as mmengine's Runner does,
    stepped as ParamSchedulerHook does (one step after every iteration);
    returns {t: [lr of each param group]} for t in ``steps``."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.decode_head = nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = wrapper.optimizer.param_groups
    scheds = [PARAM_SCHEDULERS.build(dict(s), default_args=dict(
        optimizer=wrapper)) for s in cfg.param_scheduler]
    assert all(not s.by_epoch for s in scheds)
    out, last = {}, max(steps)
    for t in range(last + 1):
        if t in steps:
            out[t] = [g['lr'] for g in groups]
        wrapper.optimizer.step()  # no gradients: parameters unchanged
        for s in scheds:
            s.step()
    base = [g['initial_lr'] for g in groups]
    return base, out


def _check_schedule(cfg, max_iters, warmup_iters, steps):
    assert cfg.train_cfg.max_iters == max_iters
    base, lrs = _schedule_lrs(cfg, set(steps))
    lr0 = cfg.optim_wrapper.optimizer.lr
    # the x1 (backbone) and x10 (head) groups, whatever their order
    assert sorted(set(base)) == pytest.approx([lr0, 10 * lr0])
    for t in steps:
        for b, got in zip(base, lrs[t]):
            want = reference_lr(b, t, max_iters, warmup_iters)
            assert got == pytest.approx(want, rel=1e-3), (t, b, got, want)


def test_schedule_40k_is_mmcv_poly_with_warmup_at_every_iteration():
    cfg = _cfg('configs/_base_/schedules/schedule_40k.py')
    chosen = [0, 1, 749, 1499, 1500, 1501, 20000, 39999]
    _check_schedule(cfg, 40000, 1500, chosen)
    _check_schedule(cfg, 40000, 1500, list(range(40000)))


def test_schedule_2k_is_the_same_policy_scaled():
    cfg = _cfg('configs/_base_/schedules/schedule_2k.py')
    _check_schedule(cfg, 2000, 150, list(range(2000)))


@pytest.mark.parametrize('path', DEMO + REAL)
def test_uda_configs_use_their_schedule_base(path):
    cfg = _cfg(path)
    base = _cfg('configs/_base_/schedules/schedule_2k.py' if path in DEMO
                else 'configs/_base_/schedules/schedule_40k.py')
    assert cfg.param_scheduler == base.param_scheduler
    assert cfg.train_cfg.max_iters == base.train_cfg.max_iters
    assert cfg.optim_wrapper.optimizer == base.optim_wrapper.optimizer
    assert cfg.optim_wrapper.paramwise_cfg == base.optim_wrapper.paramwise_cfg


def test_bench_and_makefile_scaling_keep_the_policy():
    import sys
    sys.path.insert(0, osp.join(ROOT, 'bench'))
    import uda_ablation
    from mmengine.config import DictAction
    cfg = _cfg('configs/mic_dual_aug.py')
    opts = {}
    for item in uda_ablation.schedule_options(400, 50):
        k, v = item.split('=', 1)
        opts[k] = DictAction._parse_iterable(v)
    cfg.merge_from_dict(opts)
    cfg.train_cfg.max_iters = 400
    _check_schedule(cfg, 400, 50, list(range(400)))
    # make demo (tools/demo.py) writes the same options for both its runs
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import demo
    for iters in (2, 200, 300, 400):
        assert demo.schedule(iters, 6e-4) == uda_ablation.schedule_options(
            iters, max(1, iters // 8)) + ['optim_wrapper.optimizer.lr=0.0006']
    assert 'tools/demo.py' in open(osp.join(ROOT, 'Makefile')).read()


# ------------------------------------------------------ row 6: weight decay
def _expected(name, module):
    """(lr_mult, decay_mult) the reference gives ``name``: its custom keys
    head (lr x10), norm and pos_block (decay 0), longest key first, then
    alphabetically ('head' before 'norm'). In mmseg 0.x's MiT every
    LayerNorm's name contains 'norm'; the DAFormer head's BN sits under
    'decode_head', so 'head' wins (lr x10, decay x1)."""
    if name.startswith('decode_head.'):
        return 10.0, 1.0
    assert name.startswith('backbone.'), name
    if isinstance(module, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm,
                           nn.GroupNorm)):
        return 1.0, 0.0
    return 1.0, 1.0


@pytest.mark.parametrize('path', ['configs/mic_dual_aug.py',
                                  'configs/real/mic_dual_aug_samsung.py'])
def test_every_student_parameter_gets_the_reference_lr_and_decay(path):
    from mmengine.optim import build_optim_wrapper
    cfg, model = _build_uda(path)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr0 = cfg.optim_wrapper.optimizer.lr
    wd0 = cfg.optim_wrapper.optimizer.weight_decay
    group_of = {}
    for g in wrapper.optimizer.param_groups:
        for p in g['params']:
            assert id(p) not in group_of
            group_of[id(p)] = g
    student = model.student
    modules = dict(student.named_modules())
    n_norm = 0
    for name, p in student.named_parameters():
        module = modules[name.rsplit('.', 1)[0]]
        lr_mult, decay_mult = _expected(name, module)
        g = group_of.pop(id(p))
        assert g['lr'] == pytest.approx(lr0 * lr_mult), name
        assert g['weight_decay'] == pytest.approx(wd0 * decay_mult), name
        n_norm += decay_mult == 0
    # only the student is optimised
    assert not group_of
    # MiT: per stage a patch-embed norm, the stage norm, and per block
    # norm1, norm2 and (stages with spatial reduction) the attention norm
    bb = cfg.model.segmentor.backbone
    n_blocks = sum(bb.num_layers)
    n_sr_blocks = sum(n for n, r in zip(bb.num_layers, bb.sr_ratios)
                      if r > 1)
    assert n_norm == 2 * (4 + 4 + 2 * n_blocks + n_sr_blocks)


def test_stage_norm_keys_match_only_the_stage_norms():
    _, model = _build_uda('configs/mic_dual_aug.py')
    keys = [k for k in _cfg('configs/_base_/schedules/schedule_2k.py')
            .optim_wrapper.paramwise_cfg.custom_keys
            if k.startswith('backbone.')]
    assert len(keys) == 4
    modules = dict(model.student.named_modules())
    for name, _ in model.student.named_parameters():
        if any(k in name for k in keys):
            assert isinstance(modules[name.rsplit('.', 1)[0]], nn.LayerNorm)
            assert name.rsplit('.', 1)[0] in {
                f'backbone.layers.{i}.2' for i in range(4)}, name


# ------------------------------------------------ demo = real, scaled down
# the model keys a demo may change, and why (see the demo configs)
MODEL_SCALE_DOWNS = {
    'segmentor',          # MiT-B0 + 64-channel head, from scratch (below)
    'data_preprocessor',  # crop size (below)
    'alpha',              # EMA 0.99 for a 2k-iteration run
    'vis_interval',       # pictures every 100 of 2k iterations
}
MIC_SCALE_DOWNS = {'imnet_feature_dist_lambda', 'mask_block_size'}


@pytest.mark.parametrize('demo', DEMO)
def test_demo_is_its_real_recipe_with_only_the_scale_downs(demo):
    d, r = _cfg(demo), _cfg(PAIRS[demo])
    allowed = MODEL_SCALE_DOWNS | (
        MIC_SCALE_DOWNS if demo == 'configs/mic_dual_aug.py' else set())
    changed = {k for k in set(d.model) | set(r.model)
               if d.model.get(k) != r.model.get(k)}
    assert changed == allowed
    # within the segmentor: only the size of backbone and head
    ds, rs = d.model.segmentor, r.model.segmentor
    assert {k for k in set(ds) | set(rs) if ds.get(k) != rs.get(k)} == {
        'backbone', 'decode_head'}
    assert {k for k in set(ds.backbone) | set(rs.backbone)
            if ds.backbone.get(k) != rs.backbone.get(k)} == {
        'embed_dims', 'num_layers', 'init_cfg'}
    assert {k for k in set(ds.decode_head) | set(rs.decode_head)
            if ds.decode_head.get(k) != rs.decode_head.get(k)} == {
        'in_channels', 'channels', 'embed_dims'}
    dp, rp = d.model.data_preprocessor, r.model.data_preprocessor
    assert {k for k in set(dp) | set(rp) if dp.get(k) != rp.get(k)} == {
        'size'}
    # same optimizer and lr policy; the schedule only shorter
    assert d.optim_wrapper == r.optim_wrapper
    assert [(s.type, s.start_factor if 'start_factor' in s else s.power)
            for s in d.param_scheduler] == [
        (s.type, s.start_factor if 'start_factor' in s else s.power)
        for s in r.param_scheduler]
    # the same kind of data, the demo's
    dl, rl = d.train_dataloader, r.train_dataloader
    assert dl.dataset.type == rl.dataset.type == 'UDADataset'
    assert (dl.batch_size, dl.sampler) == (rl.batch_size, rl.sampler)
    rcs_d, rcs_r = dl.dataset.rare_class_sampling, \
        rl.dataset.rare_class_sampling
    assert {k for k in rcs_r if rcs_d[k] != rcs_r[k]} == {'min_pixels'}
    for side in ('source', 'target'):
        assert dl.dataset[side].type == rl.dataset[side].type
        assert [t.type for t in dl.dataset[side].pipeline] == [
            t.type for t in rl.dataset[side].pipeline]
    assert d.model_wrapper_cfg == r.model_wrapper_cfg


@pytest.mark.parametrize('demo', DEMO)
def test_demo_key_fields(demo):
    """The resolved demo configs as they were before they inherited the
    real recipe (plus the three reference fixes): a change here is drift."""
    cfg = _cfg(demo)
    m = cfg.model
    mic = demo == 'configs/mic_dual_aug.py'
    assert m.type == 'UDASegmentor'
    bb, head = m.segmentor.backbone, m.segmentor.decode_head
    assert (bb.type, bb.embed_dims, bb.num_layers, bb.num_heads,
            bb.init_cfg) == ('MixVisionTransformer', 32, [2, 2, 2, 2],
                             [1, 2, 5, 8], None)
    assert (head.type, head.in_channels, head.channels, head.embed_dims,
            head.num_classes) == ('DAFormerHead', [32, 64, 160, 256], 64,
                                  64, 12)
    assert 'init_cfg' not in head  # BaseDecodeHead's Normal(0.01) default
    assert tuple(m.data_preprocessor.size) == (128, 256)
    assert (m.alpha, m.pseudo_threshold, m.mix, m.blur) == (
        0.99, 0.968, 'class', True)
    assert (m.color_jitter_strength, m.color_jitter_probability) == (
        0.2, 0.2)
    assert m.imnet_feature_dist_lambda == (0.0 if mic else 0.005)
    assert m.imnet_feature_dist_classes == [5, 6, 9, 10, 11]
    assert m.imnet_feature_dist_scale_min_ratio == 0.75
    assert (m.mask_lambda, m.dual_branch_lambda) == (
        (1.0, 1.0) if mic else (0.0, 0.0))
    if mic:
        assert (m.mask_block_size, m.mask_ratio) == (16, 0.7)
    assert (m.eval_model, m.vis_interval) == ('student', 100)
    assert cfg.optim_wrapper.constructor == 'UDAOptimWrapperConstructor'
    # data
    ds = cfg.train_dataloader.dataset
    assert (cfg.train_dataloader.batch_size,
            cfg.train_dataloader.num_workers) == (2, 2)
    assert ds.type == 'UDADataset'
    assert ds.rare_class_sampling == dict(class_temp=0.01, min_pixels=200,
                                          min_crop_ratio=0.5)
    for side, img in (('source', 'train_source_image'),
                      ('target', 'train_target_image')):
        sub = ds[side]
        assert (sub.type, sub.data_root, sub.data_prefix.img_path,
                sub.get('ann_file', '')) == (
            'SamsungCameraDADataset', 'data/samsung_demo', img, '')
        crops = [t for t in sub.pipeline if t.type == 'RandomCrop']
        assert [tuple(t.crop_size) for t in crops] == [(128, 256)]
        assert [tuple(t.scale) for t in sub.pipeline
                if t.type == 'Resize'] == [(512, 256)]
    assert ds.source.data_prefix.seg_map_path == 'train_source_gt'
    dual = [t for t in ds.source.pipeline if t.type == 'DualBranchAug']
    assert len(dual) == 1 and dual[0].elastic == dict(alpha=40, sigma=8,
                                                      p=1.0)
    assert dual[0].data_root == 'data/samsung_demo'
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        v = loader.dataset
        assert (v.type, v.data_root, v.data_prefix.img_path,
                v.data_prefix.seg_map_path, v.test_mode,
                v.get('ann_file', '')) == (
            'SamsungCameraDADataset', 'data/samsung_demo',
            'val_target_image', 'val_target_gt', True, '')
        assert loader.num_workers == 2
    assert cfg.val_evaluator == cfg.test_evaluator == dict(
        type='IoUMetric', iou_metrics=['mIoU'])
    # schedule
    assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (2000,
                                                                     500)
    assert cfg.default_hooks.checkpoint.interval == 500
    assert [(s.type, s.begin, s.end) for s in cfg.param_scheduler] == [
        ('LinearLR', 0, 151), ('PolyLR', 0, 2001)]
