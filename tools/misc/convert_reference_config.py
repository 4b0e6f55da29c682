"""Convert a DAFormer / HRDA / MIC reference config (mmseg 0.x) to mmplugins.

    python tools/misc/convert_reference_config.py REF_CONFIG OUT_CONFIG \
        [--allow-unsupported]

The reference config (``uda=dict(type='DACS', ...)``, ``data=dict(train=
dict(type='UDADataset', ...))``, ``optimizer``, ``lr_config``, ``runner``,
...) is loaded with ``mmengine.config.Config.fromfile`` (so ``_base_``
inheritance of other reference-style files works) and written as an mmengine
config that ``python tools/train.py OUT_CONFIG`` trains.

Every key of the loaded (merged) reference config ends in exactly one of
three lists, printed by the tool and written as comments at the top of the
output:

* **mapped** -- converted to the mmplugins key(s) in the table below;
* **ignored (no effect)** -- metadata, helper variables or values that do
  nothing (``print_grad_magnitude=False``, ``source_only=False``, ...);
* **unsupported** -- no mmplugins equivalent. By default the tool writes
  nothing and exits with status 1 and ONE error listing every unsupported
  key path (``uda.print_grad_magnitude=True has no equivalent (...)``);
  with ``--allow-unsupported`` it writes the config anyway and lists them in
  an ``UNSUPPORTED`` comment block at the top of the output.

Output layout (robustness choice): everything the reference describes
(model, data, optimizer, schedule, checkpointing, seed) is written out in
full, so the converted run does not change when an mmplugins base config is
edited; what a reference config cannot describe (default scope,
``custom_imports``, visualizer, logger/timer hooks, ``AtomicCheckpointHook``,
``ExactResumeHook``, ``val_cfg``/``test_cfg`` loops) is inherited from
``configs/_base_/default_runtime.py`` and
``configs/_base_/schedules/schedule_40k.py``, referenced by a path relative
to the output file (move the output and the ``_base_`` paths must follow).
The warm-up + poly ``param_scheduler`` has the structure of
``schedule_40k.py`` (warm-up multiplying the poly decay from iteration 0, as
mmcv 1.x); a test checks they agree.

Mapping table (reference key -> mmplugins key)::

  uda.type='DACS'                     model.type='UDASegmentor' (other types
                                      such as 'AdvSeg', 'MinEnt': unsupported)
  uda.alpha, pseudo_threshold,        model.<same name>, value copied
    pseudo_weight_ignore_top/bottom,
    imnet_feature_dist_lambda/classes,
    imnet_feature_dist_scale_min_ratio,
    mix, blur, color_jitter_strength,
    color_jitter_probability (threshold:
    jitter when U(0,1) > value, as the
    reference), mask_mode, mask_alpha,
    mask_pseudo_threshold, mask_lambda,
    mask_generator
  uda.imnet_feature_dist_scale_min_   ignored (no effect) when the feature
    ratio=None                        distance is off; unsupported with FD on
  uda.debug_img_interval              model.vis_interval
  uda.mask_mode=None, mask_lambda>0   model.mask_lambda=0 (reference: MIC off
                                      whatever the weight)
  uda.source_only=True                model.mix=None, mask_lambda=0,
                                      mask_mode=None
  uda.source_only=False               ignored (no effect)
  uda.print_grad_magnitude=False      ignored (no effect); True: unsupported
  model.type='EncoderDecoder'         model.segmentor.type='EncoderDecoder'
  model.type='HRDAEncoderDecoder'     model.segmentor.type=
                                      'HRDAEncoderDecoder'
  model.scales, hr_crop_size,         model.segmentor.<same name>, value
    hr_slide_inference,               copied (hr_crop_size as a tuple);
    hr_slide_overlapping,             values HRDAEncoderDecoder rejects are
    crop_coord_divisible,             unsupported: scales not [1, s < 1],
    blur_hr_crop, feature_scale       hr_crop_size unset, crop_coord_
                                      divisible / hr_crop_size not multiples
                                      of 4 / s (the reference's default
                                      crop_coord_divisible=1 included),
                                      feature_scale other than s ('all',
                                      1, ...); feature_scale unset (the
                                      reference's default 1): unsupported
                                      with the feature distance on, ignored
                                      (no effect) with it off
  model.test_cfg batched_slide=True   model.segmentor.type=
                                      'BatchedSlideEncoderDecoder',
                                      test_cfg.batch_size=None (all crops);
                                      with HRDAEncoderDecoder (a batched
                                      slide segmentor): test_cfg.batch_size=
                                      None only; crop_size/stride lists ->
                                      tuples
  model.pretrained=PATH               model.segmentor.backbone.init_cfg=
                                      dict(type='Pretrained', checkpoint=PATH)
                                      (NB: SegFormer's original mit_bX.pth
                                      must first be converted with mmseg's
                                      tools/model_converters/mit2mmseg.py)
  model.backbone type='mit_b0'..'mit_b5'
                                      MixVisionTransformer with that size's
                                      embed_dims/num_layers/num_heads (from
                                      mmseg's segformer configs);
                                      style='pytorch': ignored (no effect)
  model.decode_head type='DAFormerHead'
                                      mmplugins DAFormerHead: in_channels,
                                      in_index, channels, dropout_ratio,
                                      num_classes, norm_cfg, align_corners,
                                      loss_decode copied;
                                      decoder_params.embed_dims -> embed_dims;
                                      decoder_params.fusion_cfg (type='aspp')
                                      -> fusion_cfg (sep, dilations, pool,
                                      act_cfg, norm_cfg); embed_cfg /
                                      embed_neck_cfg type='mlp' without
                                      norm/act: ignored (what the head does);
                                      fusion type 'conv' etc.: unsupported
  model.decode_head type='HRDAHead'   model.segmentor.decode_head type=
    (single_scale_head='DAFormerHead')
                                      'HRDAHead', single_scale_head=
                                      'DAFormerHead'; attention_classwise,
                                      hr_loss_weight, lr_loss_weight,
                                      attention_embed_dim, fixed_attention
                                      copied; the DAFormer part converted as
                                      above; scales / enable_hr_crop /
                                      hr_slide_inference (set by the
                                      segmentor) and debug_output_attention=
                                      False: ignored (no effect);
                                      single_scale_head 'DLV2Head' etc.,
                                      HRDAHead without HRDAEncoderDecoder
                                      (or the reverse), loss weights with
                                      lr + hr >= 1: unsupported
  model.train_cfg / test_cfg          model.segmentor.train_cfg / test_cfg
  data.samples_per_gpu                train_dataloader.batch_size
  data.workers_per_gpu                {train,val,test}_dataloader.num_workers
  data.train type='UDADataset'        train_dataloader.dataset (UDADataset)
  data.train.source/target            UDADataset source/target: GTADataset
                                      (mmplugins) / CityscapesDataset (mmseg
                                      1.x), img_dir/ann_dir -> data_prefix=
                                      dict(img_path, seg_map_path)
  data.train.target ann_dir +         ignored (no effect): target labels are
    LoadAnnotations                   never trained on
  data.train.rare_class_sampling      UDADataset rare_class_sampling (copied)
  data.train.target.crop_pseudo_margins
                                      train_dataloader.dataset.target.
                                      crop_pseudo_margins (HRDA margins on
                                      the full target image; with
                                      uda.pseudo_weight_ignore_top/bottom > 0
                                      unsupported, the reference asserts)
  data.train.sync_crop_size           unsupported (the reference crops
                                      the source and the target sample at
                                      the SAME random box after their
                                      pipelines, for ClassMix with small
                                      crops; UDADataset has no such step and
                                      per-pipeline RandomCrops would crop
                                      independently); None: ignored
  data.val / data.test                val_dataloader / test_dataloader
                                      (batch 1, test_mode=True)
  evaluation.interval                 train_cfg.val_interval
  evaluation.metric                   val/test_evaluator IoUMetric(iou_metrics)
  pipeline LoadImageFromFile,         same transforms (mmseg 1.x / mmcv 2.x)
    LoadAnnotations, RandomCrop,
    PhotoMetricDistortion
  pipeline Resize(img_scale, keep_ratio[, ratio_range])
                                      Resize(scale, keep_ratio) /
                                      RandomResize(scale, ratio_range, ...)
  pipeline RandomFlip(prob|flip_ratio)
                                      RandomFlip(prob)
  pipeline Normalize(mean, std, to_rgb)
                                      model.data_preprocessor mean/std/
                                      bgr_to_rgb (target_mean/std if the
                                      target's Normalize differs)
  pipeline Pad(size, pad_val, seg_pad_val)
                                      model.data_preprocessor size/pad_val/
                                      seg_pad_val (size defaults to the crop)
  pipeline DefaultFormatBundle, Collect, ImageToTensor
                                      PackSegInputs
  pipeline MultiScaleFlipAug(img_scale, flip=False)
                                      flattened: Resize(scale=img_scale),
                                      LoadAnnotations, PackSegInputs
                                      (flip=True / img_ratios: unsupported)
  optimizer (type, lr, betas, ...)    optim_wrapper.optimizer
  optimizer.paramwise_cfg             optim_wrapper.paramwise_cfg;
                                      constructor='UDAOptimWrapperConstructor'
  paramwise_cfg.custom_keys['norm']   also set for 'backbone.layers.{0..3}.2.'
                                      (with a MiT backbone: mmseg 1.x renamed
                                      the stage LayerNorms norm1..4 that
                                      'norm' matched in mmseg 0.x)
  optimizer_config=None / dict()      nothing to map (DACS steps itself)
  optimizer_config.cumulative_iters   optim_wrapper.accumulative_counts
  optimizer_config.grad_clip          optim_wrapper.clip_grad
  optimizer_config type='Fp16OptimizerHook', fp16=dict(loss_scale)
                                      optim_wrapper.type='AmpOptimWrapper'
                                      (+ loss_scale)
  lr_config policy='poly' + warmup='linear'
                                      param_scheduler as in schedule_40k.py:
                                      LinearLR(start_factor=warmup_ratio,
                                      begin=0, end=warmup_iters + 1) times
                                      PolyLR(power, eta_min=min_lr, begin=0,
                                      end=max_iters + 1); other policies /
                                      warm-ups: unsupported
  runner type='IterBasedRunner'       train_cfg=dict(type='IterBasedTrainLoop',
                                      max_iters)
  checkpoint_config interval / max_keep_ckpts
                                      default_hooks.checkpoint
  log_config.interval                 default_hooks.logger.interval
  log_config.hooks Text/Tensorboard   ignored (default_runtime logs both)
  log_config.img_interval             ignored (no effect: HRDA debug images)
  seed                                randomness.seed (absent: None = random,
                                      as the reference)
  deterministic                       randomness.deterministic
  find_unused_parameters              model_wrapper_cfg.find_unused_parameters
                                      (model_wrapper_cfg is always
                                      MMSeparateDistributedDataParallel)
  dist_params.backend                 env_cfg.dist_cfg.backend
  cudnn_benchmark                     env_cfg.cudnn_benchmark
  log_level, load_from, work_dir      same names
  resume_from                         load_from + resume=True

Ignored (no effect), recorded in the output's comments: ``name``, ``exp``,
``name_*``, ``n_gpus``, ``gpu_model``, ``gpu_ids``, ``use_ddp_wrapper``
(mmplugins always uses its UDA DDP wrapper), ``workflow=[('train', 1)]``,
``checkpoint_config.by_epoch=False``, ``evaluation.by_epoch=False``,
``uda.print_grad_magnitude=False``, ``uda.source_only=False``, ``mask_generator
=None`` with MIC off, and the reference's helper variables (``norm_cfg``,
``img_norm_cfg``, ``crop_size``, ``dataset_type``, ``data_root``,
``*_pipeline``), whose values are read where they are used. Any other key is
unsupported. ``dual_branch_lambda`` has no reference counterpart and is left
at its default (off).
"""
import argparse
import copy
import os
import os.path as osp
import sys

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

BASE_RUNTIME = osp.join(_ROOT, 'configs', '_base_', 'default_runtime.py')
BASE_SCHEDULE = osp.join(_ROOT, 'configs', '_base_', 'schedules',
                         'schedule_40k.py')

#: MiT sizes as in mmseg 1.x's configs/segformer/segformer_mit-bX_*.py
MIT_SIZES = {
    'mit_b0': dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
    'mit_b1': dict(embed_dims=64, num_layers=[2, 2, 2, 2]),
    'mit_b2': dict(embed_dims=64, num_layers=[3, 4, 6, 3]),
    'mit_b3': dict(embed_dims=64, num_layers=[3, 4, 18, 3]),
    'mit_b4': dict(embed_dims=64, num_layers=[3, 8, 27, 3]),
    'mit_b5': dict(embed_dims=64, num_layers=[3, 6, 40, 3]),
}
MIT_HEADS = [1, 2, 5, 8]

#: UDA keys copied under the same name and meaning
UDA_COPIED = (
    'alpha', 'pseudo_threshold', 'pseudo_weight_ignore_top',
    'pseudo_weight_ignore_bottom', 'imnet_feature_dist_lambda',
    'imnet_feature_dist_classes', 'imnet_feature_dist_scale_min_ratio',
    'mix', 'blur', 'color_jitter_strength', 'color_jitter_probability',
    'mask_mode', 'mask_alpha', 'mask_pseudo_threshold', 'mask_lambda',
    'mask_generator')

METADATA = ('name', 'exp', 'n_gpus', 'gpu_model', 'gpu_ids',
            'use_ddp_wrapper')
HELPERS = ('norm_cfg', 'img_norm_cfg', 'crop_size', 'dataset_type',
           'data_root')

#: HRDAEncoderDecoder's keys (model.<key> in the reference)
HRDA_SEG_KEYS = ('scales', 'hr_crop_size', 'feature_scale',
                 'crop_coord_divisible', 'hr_slide_inference',
                 'hr_slide_overlapping', 'blur_hr_crop')
#: HRDAHead's keys copied under the same name and meaning
HRDA_HEAD_COPIED = ('attention_classwise', 'hr_loss_weight',
                    'lr_loss_weight', 'attention_embed_dim',
                    'fixed_attention')
#: output stride of the DAFormer head (the only converted HRDA
#: single_scale_head)
HRDA_OUTPUT_STRIDE = 4

DATASET_TYPES = {'GTADataset': 'GTADataset',
                 'CityscapesDataset': 'CityscapesDataset'}


class ConversionError(Exception):
    """The reference config cannot be converted (unsupported keys listed)."""


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def poly_warmup_schedulers(max_iters, warmup_iters, warmup_ratio, power,
                           min_lr):
    """mmcv 1.x ``lr_config(policy='poly', warmup='linear')`` as mmengine
    schedulers, in the structure of ``configs/_base_/schedules/
    schedule_40k.py``: both run from iteration 0 and mmengine chains them
    multiplicatively, lr(t) = lr * (1 - t / max_iters)**power * w(t) with
    w(t) = 1 - (1 - t / warmup_iters) * (1 - warmup_ratio) during the
    warm-up. mmengine's LinearLR / PolyLR reach their last factor at step
    ``end - 1``, hence ``end = iterations + 1`` (see schedule_2k.py)."""
    scheds = []
    if warmup_iters:
        scheds.append(dict(type='LinearLR', start_factor=warmup_ratio,
                           by_epoch=False, begin=0, end=warmup_iters + 1))
    scheds.append(dict(type='PolyLR', eta_min=min_lr, power=power, begin=0,
                       end=max_iters + 1, by_epoch=False))
    return scheds


class _Expr:
    """A value written as Python source (``1500 + 1``) in the output."""

    def __init__(self, text):
        self.text = text


class Converter:
    """Turns a merged reference config (plain dict) into mmplugins keys."""

    def __init__(self, ref: dict):
        self.ref = copy.deepcopy(ref)
        self.mapped = []       # 'ref.key -> new.key'
        self.ignored = []      # 'ref.key=value: why'
        self.unsupported = []  # 'ref.key=value has no equivalent (why)'
        self.out = {}

    # -------------------------------------------------------------- notes
    def _map(self, src, dst):
        self.mapped.append(f'{src} -> {dst}')

    def _ignore(self, path, value, why):
        self.ignored.append(f'{path}={_short(value)}: {why}')

    def _reject(self, path, value, why=''):
        msg = f'{path}={_short(value)} has no equivalent'
        self.unsupported.append(msg + (f' ({why})' if why else ''))

    def _leftover(self, d, path):
        for k in list(d):
            self._reject(f'{path}.{k}' if path else k, d.pop(k))

    # ---------------------------------------------------------------- run
    def convert(self) -> dict:
        ref = self.ref
        for key in ('model', 'uda', 'data'):
            if key not in ref:
                raise ConversionError(
                    f'not a DAFormer/HRDA/MIC UDA reference config: it has '
                    f'no top-level `{key}` (needs model, uda and data)')
        ref.pop('_base_', None)
        self.model = self._model(ref.pop('model'))
        self._uda(ref.pop('uda'))
        self._data(ref.pop('data'))
        self._optimizer(ref.pop('optimizer', None),
                        ref.pop('optimizer_config', None),
                        ref.pop('fp16', None))
        self._schedule(ref.pop('lr_config', None), ref.pop('runner', None))
        self._evaluation(ref.pop('evaluation', None))
        self._checkpoint(ref.pop('checkpoint_config', None))
        self._runtime(ref)
        self._leftover(ref, '')
        return self.out

    # -------------------------------------------------------------- model
    def _model(self, m):
        m = dict(m)
        seg = {}
        mtype = m.pop('type', 'EncoderDecoder')
        hrda = mtype == 'HRDAEncoderDecoder'
        if mtype not in ('EncoderDecoder', 'HRDAEncoderDecoder'):
            self._reject('model.type', mtype, 'only EncoderDecoder and '
                         'HRDAEncoderDecoder are converted')
            for k in HRDA_SEG_KEYS:
                if k in m:
                    self._reject(f'model.{k}', m.pop(k), 'HRDA option')
        seg['type'] = mtype if hrda else 'EncoderDecoder'
        pretrained = m.pop('pretrained', None)
        seg['backbone'] = self._backbone(m.pop('backbone', None), pretrained)
        if pretrained:
            self._map('model.pretrained',
                      'model.segmentor.backbone.init_cfg (Pretrained)')
        seg['decode_head'] = self._decode_head(m.pop('decode_head', None),
                                               hrda)
        if hrda:
            seg.update(self._hrda_segmentor(m))
        if 'auxiliary_head' in m:
            self._reject('model.auxiliary_head', m.pop('auxiliary_head'),
                         'UDASegmentor trains the decode head only')
        if 'neck' in m:
            self._reject('model.neck', m.pop('neck'))
        train_cfg = m.pop('train_cfg', None)
        seg['train_cfg'] = dict(train_cfg or {})
        test_cfg = dict(m.pop('test_cfg', None) or dict(mode='whole'))
        if test_cfg.pop('batched_slide', False):
            test_cfg['batch_size'] = None
            if hrda:  # HRDAEncoderDecoder is a BatchedSlideEncoderDecoder
                self._map('model.test_cfg.batched_slide=True',
                          'model.segmentor.test_cfg.batch_size=None')
            else:
                seg['type'] = 'BatchedSlideEncoderDecoder'
                self._map('model.test_cfg.batched_slide=True',
                          "model.segmentor.type='BatchedSlideEncoderDecoder'"
                          ', test_cfg.batch_size=None')
        for k in ('crop_size', 'stride'):
            if isinstance(test_cfg.get(k), list):
                test_cfg[k] = tuple(test_cfg[k])
        for k in list(test_cfg):
            if k not in ('mode', 'crop_size', 'stride', 'batch_size'):
                self._reject(f'model.test_cfg.{k}', test_cfg.pop(k))
        seg['test_cfg'] = test_cfg
        self._map('model.train_cfg/test_cfg',
                  'model.segmentor.train_cfg/test_cfg')
        self._leftover(m, 'model')
        return seg

    def _hrda_segmentor(self, m):
        """HRDAEncoderDecoder's keys, checked as HRDAEncoderDecoder checks
        them (a value it rejects is unsupported). Reference defaults where
        a key is absent: scales=[1], hr_crop_size=None,
        crop_coord_divisible=1, feature_scale=1."""
        out = {}
        scales = m.pop('scales', [1])
        try:
            ok = sorted(float(s) for s in scales)
            ok = len(ok) == 2 and ok[1] == 1 and 0 < ok[0] < 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            self._reject('model.scales', scales, 'HRDAEncoderDecoder needs '
                         '[1, s] with 0 < s < 1 (detail + context)')
            lr_scale = None
        else:
            out['scales'] = list(scales)
            lr_scale = min(float(s) for s in scales)
            self._map('model.scales', 'model.segmentor.scales')
        crop_hw = m.pop('hr_crop_size', None)
        if not (isinstance(crop_hw, (list, tuple)) and
                len(crop_hw) == 2 and all(
                    isinstance(v, int) and v > 0 for v in crop_hw)):
            self._reject('model.hr_crop_size', crop_hw,
                         'HRDAEncoderDecoder trains on a detail crop: '
                         '(h, w) positive ints are required')
            crop_hw = None
        else:
            out['hr_crop_size'] = tuple(crop_hw)
            self._map('model.hr_crop_size', 'model.segmentor.hr_crop_size')
        for k in ('hr_slide_inference', 'hr_slide_overlapping',
                  'blur_hr_crop'):
            if k in m:
                out[k] = bool(m.pop(k))
                self._map(f'model.{k}', f'model.segmentor.{k}')
        divisible = m.pop('crop_coord_divisible', 1)
        if lr_scale is not None:
            # DAFormerHead (the only converted single-scale head): output
            # stride 4; crops must land on whole context output pixels
            step = HRDA_OUTPUT_STRIDE / lr_scale
            aligned = step == int(step) and isinstance(divisible, int) and \
                divisible % int(step) == 0 and (crop_hw is None or all(
                    v % int(step) == 0 for v in crop_hw))
            if aligned:
                out['crop_coord_divisible'] = divisible
                self._map('model.crop_coord_divisible',
                          'model.segmentor.crop_coord_divisible')
            else:
                self._reject(
                    'model.crop_coord_divisible/hr_crop_size',
                    (divisible, crop_hw and tuple(crop_hw)),
                    'HRDAEncoderDecoder needs both multiples of output '
                    f'stride / context scale = {HRDA_OUTPUT_STRIDE} / '
                    f'{lr_scale:g} (the reference default 1 misaligns the '
                    'fusion)')
        fd_on = bool((self.ref.get('uda') or {}).get(
            'imnet_feature_dist_lambda', 0))
        if 'feature_scale' in m:
            fs = m.pop('feature_scale')
            if lr_scale is not None and not isinstance(fs, str) and \
                    fs == lr_scale:
                out['feature_scale'] = fs
                self._map('model.feature_scale',
                          'model.segmentor.feature_scale')
            else:
                self._reject('model.feature_scale', fs,
                             'HRDAEncoderDecoder computes the feature '
                             'distance on the context features only '
                             '(feature_scale = the context scale)')
        elif fd_on:
            self._reject('model.feature_scale (unset)', 1,
                         "the reference's default 1 (feature distance on "
                         'the detail crop): HRDAEncoderDecoder uses the '
                         'context scale only')
        else:
            self._ignore('model.feature_scale (unset)', 1,
                         "ignored (no effect: the reference's default, "
                         'feature distance off)')
        return out

    def _backbone(self, b, pretrained):
        if b is None:
            self._reject('model.backbone', None, 'a backbone is required')
            return None
        b = dict(b)
        btype = b.pop('type', None)
        if btype not in MIT_SIZES:
            self._reject('model.backbone.type', btype,
                         'only MiT (mit_b0..mit_b5) backbones are converted')
            self._leftover(b, 'model.backbone')
            return dict(type=btype)
        style = b.pop('style', None)
        if style is not None:
            self._ignore('model.backbone.style', style,
                         'ignored (no effect on MixVisionTransformer)')
        size = MIT_SIZES[btype]
        out = dict(
            type='MixVisionTransformer', in_channels=3,
            embed_dims=size['embed_dims'], num_stages=4,
            num_layers=list(size['num_layers']), num_heads=list(MIT_HEADS),
            patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
            out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True,
            drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
            init_cfg=(dict(type='Pretrained', checkpoint=pretrained)
                      if pretrained else None))
        self._map(f'model.backbone.type={btype!r}',
                  f"MixVisionTransformer(embed_dims={size['embed_dims']}, "
                  f"num_layers={size['num_layers']})")
        self._leftover(b, 'model.backbone')
        return out

    def _decode_head(self, h, hrda=False):
        if h is None:
            self._reject('model.decode_head', None, 'required')
            return None
        h = dict(h)
        htype = h.pop('type', None)
        hrda_out = None
        if htype == 'HRDAHead':
            single = h.pop('single_scale_head', None)
            if single != 'DAFormerHead':
                self._reject('model.decode_head.single_scale_head', single,
                             "HRDAHead is converted with 'DAFormerHead' "
                             'only')
            if not hrda:
                self._reject('model.decode_head.type', htype,
                             "HRDAHead needs model.type="
                             "'HRDAEncoderDecoder'")
            if single != 'DAFormerHead' or not hrda:
                self._leftover(h, 'model.decode_head')
                return dict(type=htype)
            hrda_out = self._hrda_head(h)
        elif hrda:
            self._reject('model.decode_head.type', htype,
                         "HRDAEncoderDecoder needs type='HRDAHead'")
            self._leftover(h, 'model.decode_head')
            return dict(type=htype)
        elif htype != 'DAFormerHead':
            self._reject('model.decode_head.type', htype,
                         'only DAFormerHead (and HRDAHead on it) are '
                         'converted')
            self._leftover(h, 'model.decode_head')
            return dict(type=htype)
        out = self._daformer_head(h)
        if hrda_out is None:
            return out
        out.pop('type')
        hrda_out.update(out)
        return hrda_out

    def _hrda_head(self, h):
        """HRDAHead's own keys (popped from ``h``); the DAFormer part is
        converted by :meth:`_daformer_head`."""
        out = dict(type='HRDAHead', single_scale_head='DAFormerHead')
        path = 'model.decode_head'
        for k in HRDA_HEAD_COPIED:
            if k in h:
                out[k] = h.pop(k)
                self._map(f'{path}.{k}', f'model.segmentor.decode_head.{k}')
        lr_w = out.get('lr_loss_weight', 0)
        hr_w = out.get('hr_loss_weight', 0)
        if not (0 <= lr_w <= 1 and 0 <= hr_w <= 1 and lr_w + hr_w < 1):
            for k in ('lr_loss_weight', 'hr_loss_weight'):
                if k in out:
                    self.mapped.remove(
                        f'{path}.{k} -> model.segmentor.decode_head.{k}')
                    self._reject(f'{path}.{k}', out.pop(k),
                                 'HRDAHead needs both in [0, 1] with the '
                                 'fused weight 1 - lr - hr > 0')
        fixed = out.get('fixed_attention')
        if fixed is not None and not 0 <= fixed <= 1:
            self.mapped.remove(f'{path}.fixed_attention -> '
                               'model.segmentor.decode_head.fixed_attention')
            self._reject(f'{path}.fixed_attention', out.pop('fixed_attention'),
                         'must be in [0, 1]')
        for k in ('scales', 'enable_hr_crop', 'hr_slide_inference'):
            if k in h:
                self._ignore(f'{path}.{k}', h.pop(k),
                             'ignored (no effect: HRDAEncoderDecoder sets it)')
        if 'debug_output_attention' in h:
            v = h.pop('debug_output_attention')
            if v:
                self._reject(f'{path}.debug_output_attention', v,
                             'mmplugins writes no HRDA debug images')
            else:
                self._ignore(f'{path}.debug_output_attention', v,
                             'ignored (no effect)')
        self._map("model.decode_head type='HRDAHead' (single_scale_head="
                  "'DAFormerHead')", "model.segmentor.decode_head type="
                  "'HRDAHead' + the DAFormer head's keys")
        return out

    def _daformer_head(self, h):
        out = dict(type='DAFormerHead')
        for k in ('in_channels', 'in_index', 'channels', 'dropout_ratio',
                  'num_classes', 'norm_cfg', 'act_cfg', 'align_corners',
                  'ignore_index'):
            if k in h:
                out[k] = h.pop(k)
        params = dict(h.pop('decoder_params', None) or {})
        if 'embed_dims' in params:
            out['embed_dims'] = params.pop('embed_dims')
        for k in ('embed_cfg', 'embed_neck_cfg'):
            if k not in params:
                continue
            v = params.pop(k)
            plain = v == 'same_as_embed_cfg' or (
                isinstance(v, dict) and v.get('type') == 'mlp'
                and v.get('act_cfg') is None and v.get('norm_cfg') is None
                and set(v) <= {'type', 'act_cfg', 'norm_cfg'})
            if plain:
                self._ignore(f'model.decode_head.decoder_params.{k}', v,
                             'ignored (no effect: the mmplugins head embeds '
                             'each level with this linear layer)')
            else:
                self._reject(f'model.decode_head.decoder_params.{k}', v,
                             "only type='mlp' without norm/act")
        if 'fusion_cfg' in params:
            fusion = dict(params.pop('fusion_cfg'))
            ftype = fusion.pop('type', 'aspp')
            if ftype != 'aspp':
                self._reject('model.decode_head.decoder_params.fusion_cfg'
                             '.type', ftype,
                             "the mmplugins DAFormerHead fuses with 'aspp' "
                             'only')
            else:
                out['fusion_cfg'] = {
                    k: fusion.pop(k) for k in ('sep', 'dilations', 'pool',
                                               'norm_cfg', 'act_cfg')
                    if k in fusion}
                self._leftover(fusion,
                               'model.decode_head.decoder_params.fusion_cfg')
        self._leftover(params, 'model.decode_head.decoder_params')
        loss = h.pop('loss_decode', None)
        if loss is not None:
            if isinstance(loss, dict) and loss.get('type') == \
                    'CrossEntropyLoss':
                out['loss_decode'] = dict(loss)
            else:
                self._reject('model.decode_head.loss_decode', loss,
                             'only CrossEntropyLoss is converted')
        out['init_cfg'] = None
        self._map('model.decode_head (DAFormerHead, decoder_params)',
                  'model.segmentor.decode_head (DAFormerHead embed_dims, '
                  'fusion_cfg)')
        self._leftover(h, 'model.decode_head')
        return out

    # ---------------------------------------------------------------- uda
    def _uda(self, u):
        u = dict(u)
        self.uda = {}
        utype = u.pop('type', None)
        if utype != 'DACS':
            self._reject('uda.type', utype,
                         "only 'DACS' (self-training) is implemented")
        else:
            self._map("uda.type='DACS'", "model.type='UDASegmentor'")
        for k in UDA_COPIED:
            if k not in u:
                continue
            v = u.pop(k)
            if k == 'imnet_feature_dist_scale_min_ratio' and v is None:
                if u.get('imnet_feature_dist_lambda', 0) or \
                        self.uda.get('imnet_feature_dist_lambda', 0):
                    self._reject(f'uda.{k}', v, 'needs a number with the '
                                 'feature distance on')
                else:
                    self._ignore(f'uda.{k}', v, 'ignored (no effect: feature '
                                 'distance off)')
                continue
            if k == 'mask_generator' and v is not None:
                v = dict(v)
                v.pop('_delete_', None)
            self.uda[k] = v
            self._map(f'uda.{k}', f'model.{k}')
        if 'debug_img_interval' in u:
            self.uda['vis_interval'] = u.pop('debug_img_interval')
            self._map('uda.debug_img_interval', 'model.vis_interval')
        if 'mask_mode' in self.uda and self.uda['mask_mode'] is None and \
                self.uda.get('mask_lambda', 0):
            # reference: mask_mode=None is the MIC switch, whatever the
            # weight; mmplugins: mask_lambda=0 is (mask_mode=None with
            # mask_lambda>0 is an error there)
            self.uda['mask_lambda'] = 0
            self._map('uda.mask_mode=None (with mask_lambda>0)',
                      'model.mask_lambda=0 (MIC off)')
        if 'source_only' in u:
            v = u.pop('source_only')
            if v:
                self.uda.update(mix=None, mask_lambda=0, mask_mode=None)
                self._map('uda.source_only=True',
                          'model.mix=None, mask_lambda=0, mask_mode=None')
            else:
                self._ignore('uda.source_only', v, 'ignored (no effect)')
        if 'print_grad_magnitude' in u:
            v = u.pop('print_grad_magnitude')
            if v:
                self._reject('uda.print_grad_magnitude', v,
                             'mmplugins does not print gradient magnitudes')
            else:
                self._ignore('uda.print_grad_magnitude', v,
                             'ignored (no effect)')
        self._leftover(u, 'uda')

    # --------------------------------------------------------------- data
    def _data(self, d):
        d = dict(d)
        self.norms = {}  # role -> (mean, std, to_rgb)
        self.pad = None
        self.crop_size = None
        batch = d.pop('samples_per_gpu', 2)
        workers = d.pop('workers_per_gpu', 4)
        self._map('data.samples_per_gpu', 'train_dataloader.batch_size')
        self._map('data.workers_per_gpu',
                  '{train,val,test}_dataloader.num_workers')
        train = dict(d.pop('train', None) or {})
        ttype = train.pop('type', None)
        if ttype != 'UDADataset':
            self._reject('data.train.type', ttype,
                         "only 'UDADataset' (source + target) is converted")
        uda_ds = dict(type='UDADataset')
        uda_ds['source'] = self._dataset(train.pop('source', None),
                                         'data.train.source', 'source')
        uda_ds['target'] = self._dataset(train.pop('target', None),
                                         'data.train.target', 'target')
        if uda_ds['target'] and 'crop_pseudo_margins' in uda_ds['target']:
            for k in ('pseudo_weight_ignore_top',
                      'pseudo_weight_ignore_bottom'):
                if self.uda.get(k, 0) > 0:
                    if f'uda.{k} -> model.{k}' in self.mapped:
                        self.mapped.remove(f'uda.{k} -> model.{k}')
                    self._reject(f'uda.{k}', self.uda.pop(k),
                                 'together with data.train.target.'
                                 'crop_pseudo_margins: the reference asserts '
                                 'it is 0; give the rows in the margins')
        rcs = train.pop('rare_class_sampling', None)
        if rcs is not None:
            uda_ds['rare_class_sampling'] = dict(rcs)
            self._map('data.train.rare_class_sampling',
                      'train_dataloader.dataset.rare_class_sampling')
        if 'sync_crop_size' in train:
            sync = train.pop('sync_crop_size')
            if sync is None:
                self._ignore('data.train.sync_crop_size', sync,
                             'ignored (no effect)')
            else:
                # the reference crops the source and the target sample,
                # after their own pipelines, at the SAME random box (so
                # that ClassMix pastes matching layouts); a RandomCrop per
                # pipeline would crop them independently
                self._reject('data.train.sync_crop_size', sync,
                             'a crop of source and target at the same box '
                             'after their pipelines; UDADataset has no '
                             'equivalent')
        self._leftover(train, 'data.train')
        persistent = workers > 0
        self.out['train_dataloader'] = dict(
            batch_size=batch, num_workers=workers,
            persistent_workers=persistent,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=uda_ds)
        for split in ('val', 'test'):
            ds = d.pop(split, None)
            if ds is None:
                continue
            self.out[f'{split}_dataloader'] = dict(
                batch_size=1, num_workers=workers,
                persistent_workers=persistent,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=self._dataset(ds, f'data.{split}', 'test'))
            self._map(f'data.{split}', f'{split}_dataloader.dataset')
        self._leftover(d, 'data')

    def _dataset(self, ds, path, role):
        if ds is None:
            self._reject(path, None, 'required')
            return None
        ds = dict(ds)
        dtype = ds.pop('type', None)
        if dtype not in DATASET_TYPES:
            self._reject(f'{path}.type', dtype,
                         f'converted datasets: {sorted(DATASET_TYPES)}')
        out = dict(type=DATASET_TYPES.get(dtype, dtype))
        if 'data_root' in ds:
            out['data_root'] = ds.pop('data_root')
        prefix = {}
        if 'img_dir' in ds:
            prefix['img_path'] = ds.pop('img_dir')
        ann = ds.pop('ann_dir', None)
        if ann is not None:
            if role == 'target':
                self._ignore(f'{path}.ann_dir', ann,
                             'ignored (no effect: target labels are never '
                             'trained on)')
            else:
                prefix['seg_map_path'] = ann
        out['data_prefix'] = prefix
        self._map(f'{path}.img_dir/ann_dir', 'data_prefix=dict(img_path, '
                  'seg_map_path)')
        for k in ('img_suffix', 'seg_map_suffix', 'reduce_zero_label',
                  'ignore_index'):
            if k in ds:
                out[k] = ds.pop(k)
        if role == 'test':
            out['test_mode'] = True
        if 'crop_pseudo_margins' in ds:
            margins = ds.pop('crop_pseudo_margins')
            if role != 'target':
                self._reject(f'{path}.crop_pseudo_margins', margins,
                             'a key of the target dataset only')
            elif margins is not None:
                out['crop_pseudo_margins'] = list(margins)
                self._map(f'{path}.crop_pseudo_margins',
                          'train_dataloader.dataset.target.'
                          'crop_pseudo_margins')
        out['pipeline'] = self._pipeline(ds.pop('pipeline', None) or [],
                                         f'{path}.pipeline', role,
                                         labelled=ann is not None)
        self._leftover(ds, path)
        return out

    def _pipeline(self, steps, path, role, labelled):
        return self._finish_pipeline(self._steps(steps, path, role), role,
                                     labelled)

    def _steps(self, steps, path, role, scale=None):
        out = []
        for i, step in enumerate(steps):
            step = dict(step)
            p = f'{path}[{i}]'
            t = step.pop('type', None)
            if t == 'MultiScaleFlipAug':
                flip = step.pop('flip', False)
                ratios = step.pop('img_ratios', None)
                if flip or ratios:
                    self._reject(f'{p}.flip/img_ratios', (flip, ratios),
                                 'test-time augmentation: use mmseg '
                                 'TestTimeAug + tools/test.py --tta')
                out.extend(self._steps(step.pop('transforms', []),
                                       f'{p}.transforms', role,
                                       scale=step.pop('img_scale', None)))
                self._leftover(step, p)
                continue
            new = self._transform(t, step, p, role, scale)
            if new is not None:
                out.append(new)
            self._leftover(step, p)
        return out

    def _transform(self, t, step, p, role, scale=None):
        if t == 'LoadImageFromFile':
            new = dict(type=t)
            for k in ('to_float32', 'color_type', 'imdecode_backend'):
                if k in step:
                    new[k] = step.pop(k)
            return new
        if t == 'LoadAnnotations':
            if role == 'target':
                self._ignore(p, 'LoadAnnotations',
                             'ignored (no effect: target labels are never '
                             'trained on)')
                step.clear()
                return None
            new = dict(type=t)
            for k in ('reduce_zero_label', 'imdecode_backend'):
                if k in step:
                    new[k] = step.pop(k)
            return new
        if t == 'Resize':
            img_scale = step.pop('img_scale', None) or scale
            keep = step.pop('keep_ratio', True)
            ratio = step.pop('ratio_range', None)
            if isinstance(img_scale, list) and img_scale and \
                    isinstance(img_scale[0], (list, tuple)):
                self._reject(f'{p}.img_scale', img_scale,
                             'several scales (multiscale_mode)')
                return None
            if img_scale is None:
                self._reject(f'{p}.img_scale', None, 'a scale is required')
                return None
            if ratio is not None:
                new = dict(type='RandomResize', scale=tuple(img_scale),
                           ratio_range=tuple(ratio), keep_ratio=keep)
            else:
                new = dict(type='Resize', scale=tuple(img_scale),
                           keep_ratio=keep)
            self._map(f'{p} Resize(img_scale)', f"{new['type']}(scale)")
            return new
        if t == 'RandomCrop':
            new = dict(type=t)
            for k in ('crop_size', 'cat_max_ratio', 'ignore_index'):
                if k in step:
                    new[k] = step.pop(k)
            if role == 'source' or self.crop_size is None:
                self.crop_size = tuple(new.get('crop_size') or ()) or None
            return new
        if t == 'RandomFlip':
            prob = step.pop('prob', step.pop('flip_ratio', None))
            if prob is None:  # inside MultiScaleFlipAug(flip=False): no-op
                step.pop('direction', None)
                return None
            new = dict(type=t, prob=prob)
            if 'direction' in step:
                new['direction'] = step.pop('direction')
            return new
        if t == 'PhotoMetricDistortion':
            new = dict(type=t)
            for k in ('brightness_delta', 'contrast_range',
                      'saturation_range', 'hue_delta'):
                if k in step:
                    new[k] = step.pop(k)
            return new
        if t == 'Normalize':
            mean, std = step.pop('mean', None), step.pop('std', None)
            if mean is None or std is None:
                self._reject(p, 'Normalize', 'mean and std are required')
                return None
            norm = (list(mean), list(std), bool(step.pop('to_rgb', True)))
            self.norms.setdefault(role, norm)
            self._map(f'{p} Normalize', 'model.data_preprocessor mean/std/'
                      'bgr_to_rgb')
            return None
        if t == 'Pad':
            pad = dict(size=step.pop('size', None),
                       size_divisor=step.pop('size_divisor', None),
                       pad_val=step.pop('pad_val', 0),
                       seg_pad_val=step.pop('seg_pad_val', 255))
            if role == 'source' or self.pad is None:
                self.pad = pad
            self._map(f'{p} Pad', 'model.data_preprocessor size/pad_val/'
                      'seg_pad_val')
            return None
        if t in ('DefaultFormatBundle', 'ImageToTensor'):
            step.clear()
            return None
        if t == 'Collect':
            keys = list(step.pop('keys', []))
            step.pop('meta_keys', None)
            extra = [k for k in keys if k not in ('img', 'gt_semantic_seg')]
            if extra:
                self._reject(f'{p}.keys', extra, 'PackSegInputs packs img '
                             'and gt_semantic_seg only')
            return None
        self._reject(f'{p}.type', t, 'transform not converted')
        step.clear()
        return None

    def _finish_pipeline(self, steps, role, labelled):
        steps = [s for s in steps if s is not None]
        if role == 'test' and labelled and not any(
                s['type'] == 'LoadAnnotations' for s in steps):
            # mmseg 1.x evaluators read the labels from the pipeline
            steps.append(dict(type='LoadAnnotations'))
        steps.append(dict(type='PackSegInputs'))
        return steps

    # ------------------------------------------------ optimizer, schedule
    def _optimizer(self, opt, opt_cfg, fp16):
        wrapper = dict(type='OptimWrapper',
                       constructor='UDAOptimWrapperConstructor')
        if opt is None:
            self._reject('optimizer', None, 'an optimizer is required')
            opt = {}
        opt = dict(opt)
        paramwise = opt.pop('paramwise_cfg', None)
        wrapper['optimizer'] = opt
        self._map('optimizer', 'optim_wrapper.optimizer')
        if paramwise:
            paramwise = dict(paramwise)
            keys = paramwise.get('custom_keys')
            bb = (self.model or {}).get('backbone') or {}
            if keys and 'norm' in keys and \
                    bb.get('type') == 'MixVisionTransformer':
                # mmseg 0.x's MiT names its per-stage LayerNorms norm1..4
                # (matched by 'norm'); mmseg 1.x names them
                # backbone.layers.{i}.2 -- give those the 'norm' options too
                keys = dict(keys)
                for i in range(4):
                    keys.setdefault(f'backbone.layers.{i}.2.',
                                    dict(keys['norm']))
                paramwise['custom_keys'] = keys
                self._map("optimizer.paramwise_cfg.custom_keys['norm']",
                          "+ custom_keys['backbone.layers.{0..3}.2.'] (MiT "
                          'stage norms, renamed in mmseg 1.x)')
            wrapper['paramwise_cfg'] = paramwise
            self._map('optimizer.paramwise_cfg', 'optim_wrapper.paramwise_cfg')
        if opt_cfg:
            opt_cfg = dict(opt_cfg)
            htype = opt_cfg.pop('type', 'OptimizerHook')
            if htype in ('Fp16OptimizerHook', 'GradientCumulativeFp16'
                         'OptimizerHook'):
                wrapper['type'] = 'AmpOptimWrapper'
                if 'loss_scale' in opt_cfg:
                    wrapper['loss_scale'] = opt_cfg.pop('loss_scale')
                opt_cfg.pop('distributed', None)
                self._map('optimizer_config.type=Fp16OptimizerHook',
                          "optim_wrapper.type='AmpOptimWrapper'")
            elif htype not in ('OptimizerHook',
                               'GradientCumulativeOptimizerHook'):
                self._reject('optimizer_config.type', htype)
            if 'cumulative_iters' in opt_cfg:
                wrapper['accumulative_counts'] = opt_cfg.pop(
                    'cumulative_iters')
                self._map('optimizer_config.cumulative_iters',
                          'optim_wrapper.accumulative_counts')
            clip = opt_cfg.pop('grad_clip', None)
            if clip:
                wrapper['clip_grad'] = dict(clip)
                self._map('optimizer_config.grad_clip',
                          'optim_wrapper.clip_grad')
            self._leftover(opt_cfg, 'optimizer_config')
        else:
            self._ignore('optimizer_config', opt_cfg,
                         'ignored (no effect: UDASegmentor steps the '
                         'optimizer itself)')
        if fp16:
            fp16 = dict(fp16)
            wrapper['type'] = 'AmpOptimWrapper'
            if 'loss_scale' in fp16:
                wrapper['loss_scale'] = fp16.pop('loss_scale')
            self._map('fp16', "optim_wrapper.type='AmpOptimWrapper'")
            self._leftover(fp16, 'fp16')
        self.out['optim_wrapper'] = wrapper

    def _schedule(self, lr, runner):
        max_iters = None
        if runner is None:
            self._reject('runner', None, 'runner.max_iters is required')
        else:
            runner = dict(runner)
            rtype = runner.pop('type', 'IterBasedRunner')
            if rtype != 'IterBasedRunner':
                self._reject('runner.type', rtype,
                             'only IterBasedRunner is converted')
            max_iters = runner.pop('max_iters', None)
            self._map('runner.max_iters', 'train_cfg.max_iters')
            self._leftover(runner, 'runner')
        self.max_iters = max_iters
        self.out['train_cfg'] = dict(type='IterBasedTrainLoop',
                                     max_iters=max_iters)
        if lr is None:
            self._reject('lr_config', None, 'a poly schedule is expected')
            return
        lr = dict(lr)
        policy = lr.pop('policy', None)
        if policy != 'poly':
            self._reject('lr_config.policy', policy,
                         "only 'poly' (+ linear warm-up) is converted")
            self._leftover(lr, 'lr_config')
            return
        if lr.pop('by_epoch', False):
            self._reject('lr_config.by_epoch', True)
        warmup = lr.pop('warmup', None)
        w_iters = lr.pop('warmup_iters', 0) if warmup else 0
        w_ratio = lr.pop('warmup_ratio', 0.1) if warmup else None
        if warmup is None:
            lr.pop('warmup_iters', None)
            lr.pop('warmup_ratio', None)
        elif warmup != 'linear':
            self._reject('lr_config.warmup', warmup,
                         "only 'linear' warm-up is converted")
        if lr.pop('warmup_by_epoch', False):
            self._reject('lr_config.warmup_by_epoch', True)
        power = lr.pop('power', 1.0)
        min_lr = lr.pop('min_lr', 0.0)
        self.out['param_scheduler'] = poly_warmup_schedulers(
            max_iters, w_iters, w_ratio, power, min_lr)
        self._map('lr_config (poly + linear warm-up)',
                  'param_scheduler (LinearLR x PolyLR from iteration 0)')
        self._leftover(lr, 'lr_config')

    def _evaluation(self, ev):
        if ev is None:
            self._ignore('evaluation', None, 'not set: val_interval comes '
                         'from schedule_40k.py')
            return
        ev = dict(ev)
        if 'interval' in ev:
            self.out['train_cfg']['val_interval'] = ev.pop('interval')
            self._map('evaluation.interval', 'train_cfg.val_interval')
        metric = ev.pop('metric', 'mIoU')
        metrics = [metric] if isinstance(metric, str) else list(metric)
        bad = [m for m in metrics if m not in ('mIoU', 'mDice', 'mFscore')]
        if bad:
            self._reject('evaluation.metric', bad)
        evaluator = dict(type='IoUMetric', iou_metrics=[
            m for m in metrics if m not in bad])
        self.out['val_evaluator'] = evaluator
        self.out['test_evaluator'] = dict(evaluator)
        self._map('evaluation.metric', 'val/test_evaluator.iou_metrics')
        if ev.pop('by_epoch', False):
            self._reject('evaluation.by_epoch', True)
        self._leftover(ev, 'evaluation')

    def _checkpoint(self, ck):
        hooks = self.out.setdefault('default_hooks', {})
        if ck is None:
            return
        ck = dict(ck)
        new = {}
        if ck.pop('by_epoch', False):
            self._reject('checkpoint_config.by_epoch', True)
        new['by_epoch'] = False
        for k in ('interval', 'max_keep_ckpts', 'save_last'):
            if k in ck:
                new[k] = ck.pop(k)
        hooks['checkpoint'] = new
        self._map('checkpoint_config.interval/max_keep_ckpts',
                  'default_hooks.checkpoint')
        self._leftover(ck, 'checkpoint_config')

    # ------------------------------------------------------------ runtime
    def _runtime(self, ref):
        out = self.out
        seed = ref.pop('seed', None)
        out['randomness'] = dict(seed=seed)
        self._map('seed', 'randomness.seed')
        if 'deterministic' in ref:
            out['randomness']['deterministic'] = ref.pop('deterministic')
            self._map('deterministic', 'randomness.deterministic')
        wrapper = dict(type='MMSeparateDistributedDataParallel',
                       broadcast_buffers=False,
                       find_unused_parameters=False)
        if 'find_unused_parameters' in ref:
            wrapper['find_unused_parameters'] = bool(
                ref.pop('find_unused_parameters'))
            self._map('find_unused_parameters',
                      'model_wrapper_cfg.find_unused_parameters')
        out['model_wrapper_cfg'] = wrapper
        env = {}
        if 'dist_params' in ref:
            dp = dict(ref.pop('dist_params'))
            if 'backend' in dp:
                env['dist_cfg'] = dict(backend=dp.pop('backend'))
                self._map('dist_params.backend', 'env_cfg.dist_cfg.backend')
            self._leftover(dp, 'dist_params')
        if 'cudnn_benchmark' in ref:
            env['cudnn_benchmark'] = ref.pop('cudnn_benchmark')
            self._map('cudnn_benchmark', 'env_cfg.cudnn_benchmark')
        if env:
            out['env_cfg'] = env
        for k in ('log_level', 'load_from', 'work_dir'):
            if k in ref:
                out[k] = ref.pop(k)
                self._map(k, k)
        if 'resume_from' in ref:
            resume = ref.pop('resume_from')
            if resume:
                out['load_from'] = resume
                out['resume'] = True
                self._map('resume_from', 'load_from + resume=True')
            else:
                self._ignore('resume_from', resume, 'ignored (no effect)')
        if 'workflow' in ref:
            wf = ref.pop('workflow')
            if [tuple(w) for w in wf] == [('train', 1)]:
                self._ignore('workflow', wf, 'ignored (no effect)')
            else:
                self._reject('workflow', wf, 'only training is run')
        if 'log_config' in ref:
            self._log_config(dict(ref.pop('log_config')))
        for k in list(ref):
            if k in METADATA or k.startswith('name_'):
                self._ignore(k, ref.pop(k), 'ignored (no effect: metadata)')
            elif k in HELPERS or k.endswith('_pipeline'):
                self._ignore(k, ref.pop(k), 'ignored (helper variable: '
                             'read where it is used)')

    def _log_config(self, lc):
        hooks = self.out.setdefault('default_hooks', {})
        if 'interval' in lc:
            hooks['logger'] = dict(interval=lc.pop('interval'))
            self._map('log_config.interval', 'default_hooks.logger.interval')
        if 'img_interval' in lc:
            self._ignore('log_config.img_interval', lc.pop('img_interval'),
                         'ignored (no effect: HRDA debug images)')
        for i, h in enumerate(lc.pop('hooks', []) or []):
            h = dict(h)
            if h.get('type') in ('TextLoggerHook', 'TensorboardLoggerHook'):
                self._ignore(f'log_config.hooks[{i}]', h.get('type'),
                             'ignored (default_runtime.py logs text and '
                             'TensorBoard)')
            else:
                self._reject(f'log_config.hooks[{i}]', h)
        self._leftover(lc, 'log_config')

    # -------------------------------------------------- assemble the model
    def model_cfg(self):
        """model=dict(type='UDASegmentor', ...) from the parts."""
        src = self.norms.get('source') or self.norms.get('target') or \
            self.norms.get('test')
        pre = dict(type='UDADataPreProcessor')
        if src is None:
            mean = self.ref.get('img_norm_cfg', {})
            if mean:
                src = (list(mean['mean']), list(mean['std']),
                       bool(mean.get('to_rgb', True)))
        if src is not None:
            pre.update(mean=src[0], std=src[1], bgr_to_rgb=src[2])
        tgt = self.norms.get('target')
        if tgt is not None and src is not None and tgt[:2] != src[:2]:
            pre.update(target_mean=tgt[0], target_std=tgt[1])
            self._map('target pipeline Normalize',
                      'model.data_preprocessor.target_mean/target_std')
        test = self.norms.get('test')
        ref_norm = tgt or src
        if test is not None and ref_norm is not None and \
                test[:2] != ref_norm[:2]:
            self._reject('data.test/val Normalize', test[:2],
                         'test normalisation must equal the target\'s')
        pad = self.pad or {}
        pre['pad_val'] = pad.get('pad_val', 0)
        pre['seg_pad_val'] = pad.get('seg_pad_val', 255)
        size = pad.get('size') or self.crop_size
        if size is not None:
            pre['size'] = tuple(size)
        if pad.get('size_divisor'):
            pre['size_divisor'] = pad['size_divisor']
        model = dict(type='UDASegmentor', segmentor=self.model,
                     data_preprocessor=pre)
        model.update(self.uda)
        return model


# ------------------------------------------------------------- writing
def _fmt(v, indent=0, col=None):
    """Python source of ``v`` starting at column ``col`` of a line indented
    by ``indent``; on one line when it fits in 79 columns."""
    col = indent if col is None else col
    one = _fmt_one(v)
    if col + len(one) + 2 <= 79:  # room for a closing ')' and ','
        return one
    pad = ' ' * (indent + 4)
    if isinstance(v, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in v):
            items = [f'{pad}{k}=' + _fmt(x, indent + 4,
                                          indent + 4 + len(k) + 1)
                     for k, x in v.items()]
            return 'dict(\n' + ',\n'.join(items) + ')'
        items = [f'{pad}{k!r}: ' + _fmt(x, indent + 4,
                                         indent + 4 + len(repr(k)) + 2)
                 for k, x in v.items()]
        return '{\n' + ',\n'.join(items) + '}'
    if isinstance(v, (list, tuple)):
        opener, closer = ('(', ')') if isinstance(v, tuple) else ('[', ']')
        items = [pad + _fmt(x, indent + 4) for x in v]
        tail = ',' if isinstance(v, tuple) and len(v) == 1 else ''
        return opener + '\n' + ',\n'.join(items) + tail + closer
    return one


def _fmt_one(v):
    if isinstance(v, _Expr):
        return v.text
    if isinstance(v, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in v):
            return 'dict(' + ', '.join(f'{k}={_fmt_one(x)}'
                                       for k, x in v.items()) + ')'
        return '{' + ', '.join(f'{k!r}: {_fmt_one(x)}'
                               for k, x in v.items()) + '}'
    if isinstance(v, tuple):
        inner = ', '.join(_fmt_one(x) for x in v)
        return '(' + inner + (',' if len(v) == 1 else '') + ')'
    if isinstance(v, list):
        return '[' + ', '.join(_fmt_one(x) for x in v) + ']'
    return repr(v)


def _comment_block(title, lines):
    if not lines:
        return []
    out = [f'# {title}:']
    out += [f'#   {line}' for line in lines]
    return out + ['#']


def render(conv: Converter, src_path: str, out_path: str,
           allow_unsupported: bool) -> str:
    out_dir = osp.dirname(osp.abspath(out_path))

    def rel(p):
        # relative inside the repository (the config moves with it),
        # absolute for an output outside it
        try:
            r = osp.relpath(p, out_dir)
        except ValueError:  # another drive (Windows)
            return p
        inside = not osp.relpath(out_dir, _ROOT).startswith('..')
        return r if inside else p

    model = conv.model_cfg()  # may add notes: before the header
    header = [
        f'# Converted from {src_path}',
        '# by tools/misc/convert_reference_config.py (see its docstring for '
        'the key mapping).',
        '#',
    ]
    if conv.unsupported:
        header += _comment_block(
            'UNSUPPORTED (no mmplugins equivalent; NOT converted, written '
            'with --allow-unsupported)', conv.unsupported)
    init = ((model.get('segmentor') or {}).get('backbone') or {}).get(
        'init_cfg') or {}
    if init.get('checkpoint'):
        header += [
            f"# NB: the backbone checkpoint {init['checkpoint']!r} must hold "
            'mmseg 1.x MiT keys:',
            "#   convert SegFormer's original mit_bX.pth with mmseg's "
            'tools/model_converters/mit2mmseg.py',
            '#   (or use the converted weights of '
            'configs/_base_/models/daformer_mit-b5.py).', '#']
    header += _comment_block('Ignored', conv.ignored)
    header += _comment_block('Mapped', conv.mapped)
    body = [f'_base_ = {_fmt([rel(BASE_RUNTIME), rel(BASE_SCHEDULE)])}']
    order = ['train_dataloader', 'val_dataloader', 'test_dataloader',
             'val_evaluator', 'test_evaluator', 'optim_wrapper',
             'param_scheduler', 'train_cfg', 'default_hooks', 'randomness',
             'model_wrapper_cfg', 'env_cfg', 'log_level', 'load_from',
             'resume', 'work_dir']
    body.append(f'model = {_fmt(model, 0, 8)}')
    for k in order:
        if k in conv.out:
            v = conv.out[k]
            if k == 'optim_wrapper':  # replace the base's optimizer whole
                v = dict(_delete_=True, **v)
            if k == 'param_scheduler':  # end = iterations + 1, as the base
                v = [dict(sch, end=_Expr(f"{sch['end'] - 1} + 1"))
                     for sch in v]
            body.append(f'{k} = {_fmt(v, 0, len(k) + 3)}')
    return '\n'.join(header + body) + '\n'


def load_reference(path):
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'reference config not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # noqa: BLE001 (re-raised with context)
        raise ConversionError(
            f'could not load {path} with mmengine.config.Config.fromfile: '
            f'{type(e).__name__}: {e}\n(reference configs that import mmcv '
            '1.x / mmseg 0.x modules or use mmcv-1.x-only config syntax '
            'cannot be loaded; inline those values as plain Python)') from e
    return cfg.to_dict()


def convert_file(src, dst, allow_unsupported=False):
    """Convert ``src`` to ``dst``; returns the :class:`Converter`.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ConversionError: ``src`` cannot be loaded or is not a UDA reference
            config, or (without ``allow_unsupported``) it has unsupported
            keys -- all of them are listed in the message.
    """
    conv = Converter(load_reference(src))
    conv.convert()
    text = render(conv, src, dst, allow_unsupported)  # also validates norms
    if conv.unsupported and not allow_unsupported:
        raise ConversionError(
            f'{src}: {len(conv.unsupported)} unsupported key(s), nothing '
            'written (pass --allow-unsupported to write the config with '
            'them listed in a comment):\n  ' +
            '\n  '.join(conv.unsupported))
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    with open(dst, 'w') as f:
        f.write(text)
    return conv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ref_config', help='reference (mmseg 0.x) config')
    parser.add_argument('out_config', help='mmplugins config to write')
    parser.add_argument('--allow-unsupported', action='store_true',
                        help='write the config even with unsupported keys '
                        '(listed in a comment block at its top)')
    args = parser.parse_args(argv)
    try:
        conv = convert_file(args.ref_config, args.out_config,
                            args.allow_unsupported)
    except (FileNotFoundError, ConversionError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for line in conv.mapped:
        print(f'mapped:      {line}')
    for line in conv.ignored:
        print(f'ignored:     {line}')
    for line in conv.unsupported:
        print(f'UNSUPPORTED: {line}')
    print(f'wrote {args.out_config}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
