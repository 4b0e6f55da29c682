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
    ratio=None                        distance is off or on every class;
                                      unsupported with FD on a class subset
  uda.debug_img_interval              model.vis_interval
  uda.mask_mode=None, mask_lambda>0   model.mask_lambda=0 (reference: MIC off
                                      whatever the weight)
  uda.source_only=True                model.source_only=True (reference:
                                      no teacher, no mix; MIC, if on, masks
                                      the source images against their
                                      labels)
  uda.source_only=False               ignored (no effect)
  uda.print_grad_magnitude=False      ignored (no effect); True: unsupported
  (no uda section: the papers'        a plain segmentor config: model =
    source-/target-only baselines)    the segmentor (SegDataPreProcessor),
                                      train_dataloader.dataset = data.train,
                                      MMDistributedDataParallel
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
                                      (SegFormer's original mit_bX.pth loads
                                      as it is: mit_weights.py converts it
                                      on the fly with mmseg's mit2mmseg.py)
  model.backbone type='mit_b0'..'mit_b5'
                                      MixVisionTransformer with that size's
                                      embed_dims/num_layers/num_heads (from
                                      mmseg's segformer configs);
                                      style='pytorch': ignored (no effect)
  model.decode_head type='DAFormerHead'
                                      mmplugins DAFormerHead: in_channels,
                                      in_index, channels, dropout_ratio,
                                      num_classes, norm_cfg, align_corners,
                                      loss_decode copied; no init_cfg (mmseg's
                                      Normal(0.01) classifier init, as the
                                      reference);
                                      decoder_params.embed_dims -> embed_dims;
                                      decoder_params.fusion_cfg (type='aspp')
                                      -> fusion_cfg (sep, dilations, pool,
                                      act_cfg, norm_cfg); embed_cfg /
                                      embed_neck_cfg type='mlp' without
                                      norm/act: ignored (what the head does);
                                      fusion type 'conv' / 'isa' ->
                                      fusion_cfg (kernel_size / isa_channels,
                                      down_factor, key_query_num_convs, ...);
                                      embed_neck_cfg 'rawconv_and_aspp' ->
                                      embed_neck_cfg
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
                                      single_scale_head='DLV2Head': the
                                      DLV2Head part as below, crops aligned
                                      at output stride 8; other heads,
                                      HRDAHead without HRDAEncoderDecoder
                                      (or the reverse), loss weights with
                                      lr + hr >= 1: unsupported
  model.backbone type='ResNetV1c' /   the mmseg 1.x class of that name, its
    'ResNeXt' / 'ResNeSt'             arguments copied (depth, strides,
                                      dilations, contract_dilation, norm_cfg,
                                      groups, radix, ...); model.pretrained
                                      ('open-mmlab://resnet101_v1c', ...) ->
                                      init_cfg Pretrained
  model.decode_head type='DLV2Head'   mmplugins DLV2Head (DeepLabV2: sum of
                                      dilated 3x3 convs): in_channels,
                                      in_index, dilations, num_classes,
                                      init_cfg, loss_decode copied
  model.decode_head type=             mmseg 1.x's head of that name, its
    'ISAHead' / 'DAHead' /            arguments copied (DAHead: each of its
    'DepthwiseSeparableASPPHead' /    three outputs supervised, as the
    'UPerHead'                        reference)
  model.decode_head type=             DAFormerHead(embed_dims=channels=
    'SegFormerHead' (decoder_params   embed_dim, fusion_cfg=dict(type='conv',
    embed_dim, conv_kernel_size)      kernel_size), init_cfg=None): the
                                      reference's SegFormer head (plain
                                      linear embeddings, PyTorch-initialised
                                      classifier); its unused channels
                                      dropped
  model.neck type='SegFormerAdapter'  model.segmentor.neck (mmplugins
                                      SegFormerAdapter, out_layers, scales)
  model.train_cfg / test_cfg          model.segmentor.train_cfg / test_cfg
  data.samples_per_gpu                train_dataloader.batch_size
  data.workers_per_gpu                {train,val,test}_dataloader.num_workers
  data.train type='UDADataset'        train_dataloader.dataset (UDADataset)
  data.train.source/target            UDADataset source/target: GTADataset,
                                      SynthiaDataset, ACDCDataset
                                      (mmplugins) / CityscapesDataset,
                                      DarkZurichDataset (mmseg 1.x), same
                                      files and suffixes; img_dir/ann_dir ->
                                      data_prefix=dict(img_path, seg_map_path)
  data.train.target ann_dir +         ignored (no effect): target labels are
    LoadAnnotations                   never trained on
  data.train.rare_class_sampling      UDADataset rare_class_sampling (copied)
  data.train.target.crop_pseudo_margins
                                      train_dataloader.dataset.target.
                                      crop_pseudo_margins (HRDA margins on
                                      the full target image; with
                                      uda.pseudo_weight_ignore_top/bottom > 0
                                      unsupported, the reference asserts)
  data.train.sync_crop_size           train_dataloader.dataset.sync_crop_size
                                      (source and target cropped at the SAME
                                      random box after their pipelines, as
                                      the reference; the data preprocessor
                                      pads to that size); None: ignored
  data.val / data.test                val_dataloader / test_dataloader
                                      (batch 1, test_mode=True)
  evaluation.interval                 train_cfg.val_interval
  evaluation.metric                   val/test_evaluator IoUMetric(iou_metrics)
                                      (SubsetIoUMetric(subsets='synthia'):
                                      + mIoU16 / mIoU13 with a SynthiaDataset
                                      source)
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
``name_*``, ``n_gpus``, ``gpu_model``, ``gpu_ids``, ``git_rev``,
``use_ddp_wrapper`` (mmplugins always uses its UDA DDP wrapper),
``uda.imnet_feature_dist_scale_method`` (read nowhere in the reference),
``workflow=[('train', 1)]``,
``checkpoint_config.by_epoch=False``, ``evaluation.by_epoch=False``,
``uda.print_grad_magnitude=False``, ``uda.source_only=False``, ``mask_generator
=None`` with MIC off, and the reference's helper variables (``norm_cfg``,
``img_norm_cfg``, ``crop_size``, ``dataset_type``, ``data_root``,
``*_pipeline``), whose values are read where they are used. Any other key is
unsupported. ``dual_branch_lambda`` has no reference counterpart and is left
at its default (off).
"""
import copy
import os
import os.path as osp

from .base import ConversionError
from .data_section import DataSection
from .model_section import ModelSection
from .render import render
from .runtime_section import RuntimeSection
from .schedule_section import ScheduleSection
from .uda_section import UDASection


class Converter(ModelSection, UDASection, DataSection, ScheduleSection,
                RuntimeSection):
    """Turns a merged reference config (plain dict) into mmplugins keys.

    One section class per concern; each pops the keys it understands and
    records it in ``mapped`` / ``ignored`` / ``unsupported``.
    """

    def __init__(self, ref: dict):
        self.ref = copy.deepcopy(ref)
        self.mapped = []       # 'ref.key -> new.key'
        self.ignored = []      # 'ref.key=value: why'
        self.unsupported = []  # 'ref.key=value has no equivalent (why)'
        self.out = {}

    def convert(self) -> dict:
        ref = self.ref
        for key in ('model', 'data'):
            if key not in ref:
                raise ConversionError(
                    f'not a DAFormer/HRDA/MIC reference config: it has no '
                    f'top-level `{key}` (needs model and data, and uda for '
                    'a UDA run)')
        # no `uda`: the papers' source-only / target-only baselines, a plain
        # segmentor trained on data.train (the reference's train.py builds
        # the segmentor itself then)
        self.baseline = 'uda' not in ref
        ref.pop('_base_', None)
        self.model = self._model(ref.pop('model'))
        if self.baseline:
            self.uda = {}
        else:
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
        if self.baseline:
            self.mapped = [m.replace('model.segmentor.', 'model.')
                           for m in self.mapped]
        return self.out

    def model_cfg(self):
        """model=dict(type='UDASegmentor', ...) from the parts (the plain
        segmentor for a baseline)."""
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
        # the reference pads to the pipeline's crop, then (sync_crop_size)
        # crops source and target smaller: the batch is of the sync size
        size = self.sync_crop_size or pad.get('size') or self.crop_size
        if size is not None:
            pre['size'] = tuple(size)
        if pad.get('size_divisor'):
            pre['size_divisor'] = pad['size_divisor']
        if self.baseline:
            pre['type'] = 'SegDataPreProcessor'
            return dict(self.model, data_preprocessor=pre)
        model = dict(type='UDASegmentor', segmentor=self.model,
                     data_preprocessor=pre)
        model.update(self.uda)
        return model


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
