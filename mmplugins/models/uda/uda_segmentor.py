"""UDASegmentor: EMA teacher + DACS class-mix + ImageNet FD + MIC + dual branch.

The whole UDA training step lives in this one class; every trick is a
toggle in the config (see ``docs/uda.md``):

=====================  ===================================  ==============
trick                  config key                           off
=====================  ===================================  ==============
DACS class-mix         ``mix='class'``                      ``mix=None``
ImageNet feature dist  ``imnet_feature_dist_lambda=0.005``  ``0``
MIC masked images      ``mask_lambda=1``                    ``0``
MIC separate teacher   ``mask_alpha`` / ``mask_pseudo...``  ``'same'``
dual-branch distortion ``dual_branch_lambda=1``             ``0``
per-domain norm        ``data_preprocessor.target_mean``    ``None``
rare-class sampling    ``UDADataset(rare_class_sampling=)`` ``None``
=====================  ===================================  ==============

Defaults follow the reference implementations (lhoyer/DAFormer, lhoyer/MIC);
the reference's own config keys are accepted with their meanings (see the
key table in ``docs/uda.md``).
"""
import copy
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from mmplugins.registry import register_module
from .class_mix import class_mix
from .feature_distance import masked_feat_dist, thing_mask
from .masking_consistency import (MASK_MODES, MaskingConsistency,
                                  resolve_mask_generator)
from .utils import (CLASS_MIX_POOLS, STRONG_AUG_GATES, TEACHER_BUFFERS,
                    check_choice,
                    colorize, copy_weights, denormalize, ema_alpha,
                    ema_update, palette_for, pseudo_label_and_weight,
                    resolve_jitter_prob)

_DROPOUT_TYPES = (nn.modules.dropout._DropoutNd, )


#: heads whose forward returns several logits (the prediction first) ->
#: the log names of their loss terms ('' = the prediction's, ``src.loss_ce``)
MULTI_OUTPUT_NAMES = {'DAHead': ['', 'pam', 'cam']}


def _is_drop_path(m: nn.Module) -> bool:
    return type(m).__name__ in ('DropPath', 'DropPathV2')


@register_module('models', toolboxes=('mmseg', ))
class UDASegmentor(BaseSegmentor):
    """Self-training UDA around any mmseg segmentor (DACS/DAFormer/MIC).

    The *student* is built from ``segmentor`` (e.g. an ``EncoderDecoder``
    with a MiT backbone and a DAFormer head) and trained on labelled source
    images; an EMA *teacher* copy labels the target images. Per iteration:

    1. teacher ← EMA(student), ``α_t = min(1 − 1/(t+1), alpha)``;
    2. teacher predicts the *un-augmented* target: pseudo-label = argmax,
       weight = fraction of the batch's pixels with max prob ≥
       ``pseudo_threshold`` (one scalar per batch, as in DACS);
    3. source loss (+ ImageNet feature distance on thing classes);
    4. dual-branch: supervised loss on the source's distortion view;
    5. DACS: half of each source image's classes pasted onto the target,
       strongly augmented, trained on mixed labels/weights;
    6. MIC: the target with ~70 % of its blocks masked, trained on the
       teacher's pseudo-labels;
    7. one optimiser step with the summed gradients.

    Each term is back-propagated right after its forward pass (memory stays
    at one pass); under DDP all but the last run in ``no_sync`` so gradients
    are all-reduced once.

    Args:
        segmentor (dict): Config of the student segmentor (any mmseg
            segmentor whose ``forward(mode='tensor')`` returns logits, e.g.
            ``EncoderDecoder``). Its ``data_preprocessor`` is used for the
            UDA preprocessor unless ``data_preprocessor`` is given.
        data_preprocessor (dict, optional): Defaults to the student's,
            turned into :class:`UDADataPreProcessor`.
        source_only (bool): The reference's ``source_only`` (MIC's
            "MIC for supervised training", experiment 85): no EMA teacher,
            no pseudo-labels and no ClassMix (whatever ``mix`` says; the
            reference keeps ``mix='class'`` in these configs); the
            source loss, the ImageNet feature distance and the
            dual-branch term as usual, and with MIC on (``mask_lambda >
            0``) the masked term runs on the *source* images against
            their ground truth (weight None), strongly augmented first in
            the ``...aug`` modes -- whatever ``mask_mode`` says. No target
            batch is needed. ``eval_model='teacher'`` is an error (there is
            no teacher). Defaults to False.
        alpha (float): Teacher EMA decay cap. Defaults to 0.999.
        teacher_buffers (str): What the EMA step does with the buffers (BN
            running statistics) of the teacher(s). ``'own'`` (default,
            the reference): parameters only are averaged (and copied at
            iteration 0); the teacher's buffers evolve through its own
            forward passes -- it pseudo-labels the target in train mode
            with dropout and drop-path off, so its BN layers normalise with
            the target batch's statistics and update their running
            statistics from it. ``'student'``: the student's buffers are
            copied into the teacher at every EMA step (running statistics
            of the source + mixed batches the student trained on). Only
            the running statistics differ, so only ``eval_model='teacher'``
            (which evaluates in eval mode) sees the difference.
        pseudo_threshold (float): Confidence for the pseudo-label weight.
            Defaults to 0.968.
        pseudo_weight_ignore_top (int): Rows at the top of the target with
            weight 0. Defaults to 0.
        pseudo_weight_ignore_bottom (int): Rows at the bottom. Defaults to 0.
        crop_pseudo_margins: Removed: it masked every crop's borders. The
            reference's (HRDA) margins are a key of the target dataset,
            ``train_dataloader.dataset.target.crop_pseudo_margins``: they
            mask the full image's borders, the mask is cropped with the
            image and arrives as ``data['target_valid_pseudo_mask']``; the
            pseudo weight (of the MIC teacher too) is multiplied by it.
            Giving it here raises a ValueError.
        mix (str, optional): ``'class'`` for DACS ClassMix, ``None`` off.
            Defaults to ``'class'``.
        class_mix_pool (str): ``'batch'`` (reference: classes drawn from
            the whole batch's labels, ignore id included) or ``'sample'``
            (each image's own classes, ignore excluded). See
            :func:`~mmplugins.models.uda.utils.class_mix_masks`.
        color_jitter_strength (float): Strong-aug jitter strength. 0.2.
        color_jitter_prob (float, optional): Probability that the jitter is
            applied (to a batch). Defaults to 0.8.
        color_jitter_probability (float, optional): The reference's key,
            with its meaning: a *threshold*, the jitter is applied when
            U(0, 1) > value, i.e. with probability ``1 - value`` (reference
            0.2). ``color_jitter_p`` is accepted as its alias. Give at most
            one of the three keys.
        blur (bool): Gaussian blur (prob 0.5) in the mix's strong aug. True.
        strong_aug_gate (str): ``'batch'`` (reference: jitter and blur
            switched on or off once per batch, factors per sample) or
            ``'sample'`` (on/off per sample).
        imnet_feature_dist_lambda (float): ImageNet FD weight, 0 = off.
        imnet_feature_dist_classes (list[int], optional): Thing classes the
            FD is computed on (``None`` = all pixels).
        imnet_feature_dist_scale_min_ratio (float): Min class share of a
            feature cell for it to count as that class. Defaults to 0.75.
        mask_lambda (float): MIC loss weight, 0 = off. Defaults to 0.
        mask_mode (str, optional): MIC mode, one of ``'separatetrgaug'``
            (default, the paper's), ``'separatetrg'``, ``'separatesrc'``,
            ``'separatesrcaug'``, ``'separate'``, ``'separateaug'``; ``None``
            turns MIC off (the reference's switch). See
            :class:`~mmplugins.models.uda.masking_consistency.
            MaskingConsistency`.
        mask_alpha ('same' | float): EMA decay of a separate MIC teacher.
        mask_pseudo_threshold ('same' | float): Its confidence threshold.
            Both ``'same'`` (default): MIC uses the main teacher's labels.
            ``mask_pseudo_threshold=None``: a separate MIC teacher whose
            pseudo-label weight is 1 on every pixel (0 outside the valid
            mask / ignored rows), as the reference.
        mask_block_size (int, optional): MIC block size (32 at 512² crops,
            64 at 1024²). Defaults to 32.
        mask_ratio (float, optional): Fraction of masked blocks. 0.7.
        mask_generator (dict, optional): The reference's form
            ``dict(type='block', mask_block_size=..., mask_ratio=...)``;
            give it or the two keys above, not both.
        dual_branch_lambda (float): Weight of the distortion-view loss, 0 =
            off. Needs ``DualBranchAug`` in the source pipeline.
        eval_model (str): ``'student'`` (default) or ``'teacher'`` for
            val/test.
        vis_interval (int): Every N iterations log an image panel (target,
            pseudo-label, student prediction, masked input, distortion view)
            to the visualizer backends (TensorBoard). 0 = off.
        train_cfg, test_cfg: Unused (the student's are used); accepted for
            config symmetry.
        pretrained: Must be None. Accepted because mmseg's ``init_model``
            (and so ``inference_model``) sets ``model.pretrained = None`` on
            every config; pretrained weights are given as the student's
            ``init_cfg`` (``segmentor.backbone.init_cfg``).
        init_cfg (dict, optional): Initialisation config.

    Note:
        At val/test/inference the model is its ``eval_model`` segmentor:
        ``predict``, ``encode_decode``, ``out_channels`` and ``decode_head``
        are the student's or the teacher's, so mmseg's ``init_model`` /
        ``inference_model`` / ``MMSegInferencer`` and ``SegTTAModel``
        (``tools/test.py --tta``) work on it as on an ``EncoderDecoder``.
    """

    def __init__(self,
                 segmentor: dict,
                 data_preprocessor: Optional[dict] = None,
                 source_only: bool = False,
                 alpha: float = 0.999,
                 teacher_buffers: str = 'own',
                 pseudo_threshold: float = 0.968,
                 pseudo_weight_ignore_top: int = 0,
                 pseudo_weight_ignore_bottom: int = 0,
                 crop_pseudo_margins: Optional[Sequence[int]] = None,
                 mix: Optional[str] = 'class',
                 class_mix_pool: str = 'batch',
                 color_jitter_strength: float = 0.2,
                 color_jitter_prob: Optional[float] = None,
                 color_jitter_probability: Optional[float] = None,
                 color_jitter_p: Optional[float] = None,
                 blur: bool = True,
                 strong_aug_gate: str = 'batch',
                 imnet_feature_dist_lambda: float = 0.0,
                 imnet_feature_dist_classes: Optional[Sequence[int]] = None,
                 imnet_feature_dist_scale_min_ratio: float = 0.75,
                 mask_lambda: float = 0.0,
                 mask_mode: Optional[str] = 'separatetrgaug',
                 mask_alpha='same',
                 mask_pseudo_threshold='same',
                 mask_block_size: Optional[int] = None,
                 mask_ratio: Optional[float] = None,
                 mask_generator: Optional[dict] = None,
                 dual_branch_lambda: float = 0.0,
                 eval_model: str = 'student',
                 vis_interval: int = 0,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        if pretrained is not None:
            raise ValueError(
                'UDASegmentor: pretrained must be None (mmseg 1.x passes it '
                'as None); give pretrained weights as the student\'s '
                "backbone init_cfg=dict(type='Pretrained', checkpoint=...), "
                f'but got pretrained={pretrained!r}')
        # ConfigDict: mmseg segmentors read test_cfg.mode as an attribute
        segmentor = ConfigDict(copy.deepcopy(segmentor))
        student_pre = segmentor.pop('data_preprocessor', None)
        if data_preprocessor is None:
            if student_pre is None:
                raise ValueError(
                    'UDASegmentor: give `data_preprocessor` or a '
                    '`data_preprocessor` inside `segmentor`')
            data_preprocessor = dict(student_pre)
            data_preprocessor['type'] = 'UDADataPreProcessor'
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self._check_args(alpha, pseudo_threshold, mix, eval_model,
                         mask_lambda, dual_branch_lambda,
                         imnet_feature_dist_lambda, vis_interval)
        if not isinstance(source_only, bool):
            raise ValueError(f'source_only must be a bool, got '
                             f'{source_only!r}')
        if source_only and eval_model == 'teacher':
            raise ValueError(
                "UDASegmentor: eval_model='teacher' but source_only=True "
                'builds no teacher: use eval_model=\'student\'')
        check_choice('teacher_buffers', teacher_buffers, TEACHER_BUFFERS)
        self.source_only = source_only
        self.teacher_buffers = teacher_buffers
        self.student = MODELS.build(segmentor)
        if getattr(self.student, 'with_auxiliary_head', False):
            raise ValueError(
                'UDASegmentor: the student segmentor has an auxiliary_head; '
                'the UDA terms use the decode head only. Remove '
                '`auxiliary_head` from `segmentor` (DAFormer has none).')
        if source_only:  # the reference builds no EMA model then
            self.teacher = None
        else:
            self.teacher = copy.deepcopy(self.student)
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        self.num_classes = self.student.decode_head.num_classes
        self.ignore_index = self.student.decode_head.ignore_index
        self.align_corners = self.student.decode_head.align_corners

        self.alpha = alpha
        self.pseudo_threshold = pseudo_threshold
        self.pseudo_ignore = (pseudo_weight_ignore_top,
                              pseudo_weight_ignore_bottom)
        if crop_pseudo_margins is not None:
            raise ValueError(
                'UDASegmentor: crop_pseudo_margins is no longer a model '
                'argument (it masked the borders of every crop). Give it to '
                'the target dataset, as the reference (HRDA) does: '
                'train_dataloader.dataset.target.crop_pseudo_margins='
                f'{list(crop_pseudo_margins)}; the margins are then in pixels '
                'of the full target image. For rows at the top/bottom of '
                'every crop use pseudo_weight_ignore_top/bottom.')
        # source-only: the reference skips the mix (its configs keep
        # mix='class', which it asserts)
        self.mix = None if source_only else mix
        check_choice('class_mix_pool', class_mix_pool, CLASS_MIX_POOLS)
        check_choice('strong_aug_gate', strong_aug_gate, STRONG_AUG_GATES)
        self.class_mix_pool = class_mix_pool
        self.strong_aug_gate = strong_aug_gate
        self.color_jitter_strength = color_jitter_strength
        self.color_jitter_prob = resolve_jitter_prob(color_jitter_prob,
                                                     color_jitter_probability,
                                                     color_jitter_p)
        self.blur = blur
        self.fd_lambda = imnet_feature_dist_lambda
        self.fd_classes = (None if imnet_feature_dist_classes is None else
                           list(imnet_feature_dist_classes))
        self.fd_scale_min_ratio = imnet_feature_dist_scale_min_ratio
        if self.fd_classes is not None:
            bad = [c for c in self.fd_classes
                   if not 0 <= int(c) < self.num_classes]
            if bad:
                raise ValueError(
                    f'imnet_feature_dist_classes {bad} out of range: the '
                    f'student has num_classes={self.num_classes}, so class '
                    f'ids must be in [0, {self.num_classes - 1}]')
        self.mask_lambda = mask_lambda
        self.mask_block_size, self.mask_ratio = resolve_mask_generator(
            mask_generator, mask_block_size, mask_ratio)
        if mask_mode is None and mask_lambda > 0:
            raise ValueError(
                f'mask_mode=None turns MIC off, but mask_lambda={mask_lambda}'
                f' > 0: set mask_mode to one of {MASK_MODES} or '
                'mask_lambda=0')
        self.mic = None
        if mask_lambda > 0:  # validated now, not at the first masked step
            self.mic = MaskingConsistency(
                mask_mode, mask_lambda, self.mask_block_size,
                self.mask_ratio, mask_alpha, mask_pseudo_threshold,
                student=self.student, source_only=source_only,
                copy_buffers=self._copy_buffers)
        else:  # validated even while MIC is off
            check_choice('mask_mode', mask_mode, MASK_MODES + (None, ))
        self.dual_branch_lambda = dual_branch_lambda
        self.eval_model = eval_model
        self.vis_interval = vis_interval

        if self.fd_lambda > 0:
            # frozen copy of the initial (pretrained) feature extractor; it is
            # refreshed from the student after init_weights() and saved in
            # checkpoints, so a resumed run compares against the same weights
            parts = dict(backbone=copy.deepcopy(self.student.backbone))
            if self.student.with_neck:
                parts['neck'] = copy.deepcopy(self.student.neck)
            self.imnet_model = nn.ModuleDict(parts)
            for p in self.imnet_model.parameters():
                p.requires_grad_(False)
        else:
            self.imnet_model = None
        # iteration counter of the UDA step (drives the EMA ramp); a buffer
        # so that it is saved in checkpoints and restored on resume
        self.register_buffer('local_iter', torch.zeros((), dtype=torch.long))
        self._teacher_eval_mode()

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _check_args(alpha, pseudo_threshold, mix, eval_model, mask_lambda,
                    dual_branch_lambda, fd_lambda, vis_interval):
        if not 0 <= alpha <= 1:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        if not 0 <= pseudo_threshold <= 1:
            raise ValueError('pseudo_threshold must be in [0, 1], got '
                             f'{pseudo_threshold}')
        if mix not in (None, 'class'):
            raise ValueError(f"mix must be 'class' or None, got {mix!r}")
        if eval_model not in ('student', 'teacher'):
            raise ValueError("eval_model must be 'student' or 'teacher', got "
                             f'{eval_model!r}')
        for name, v in (('mask_lambda', mask_lambda),
                        ('dual_branch_lambda', dual_branch_lambda),
                        ('imnet_feature_dist_lambda', fd_lambda),
                        ('vis_interval', vis_interval)):
            if v < 0:
                raise ValueError(f'{name} must be >= 0, got {v}')

    @property
    def _copy_buffers(self) -> bool:
        return self.teacher_buffers == 'student'

    @property
    def uses_target(self) -> bool:
        return self.mix is not None or (self.mic is not None
                                        and self.mic.uses_target)

    @property
    def needs_pseudo_labels(self) -> bool:
        """The main teacher labels the target (mix, or MIC sharing it)."""
        return self.mix is not None or (
            self.mic is not None and self.mic.uses_target
            and not self.mic.separate_teacher)

    @property
    def student_module(self) -> nn.Module:
        """The student, unwrapped from DDP if needed."""
        s = self.student
        return s.module if is_model_wrapper(s) else s

    def _teacher_eval_mode(self):
        # the teacher is never trained: dropout and drop-path stay off so
        # pseudo-labels are deterministic. BN layers (e.g. in the DAFormer
        # head) stay in train mode and normalise with the target batch's
        # statistics and update their running statistics from it, as in
        # the reference (teacher_buffers='own'; 'student' re-copies the
        # student's at every EMA step).
        teachers = [self.teacher] if self.teacher is not None else []
        if getattr(self, 'mic', None) is not None \
                and self.mic.teacher is not None:
            teachers.append(self.mic.teacher)
        for m in (m for t in teachers for m in t.modules()):
            if isinstance(m, _DROPOUT_TYPES) or _is_drop_path(m):
                m.training = False
        if self.imnet_model is not None:
            self.imnet_model.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self._teacher_eval_mode()
        return self

    def init_weights(self):
        super().init_weights()
        if self.teacher is not None:
            copy_weights(self.teacher, self.student_module)
        if self.mic is not None and self.mic.teacher is not None:
            copy_weights(self.mic.teacher, self.student_module)
        if self.imnet_model is not None:
            copy_weights(self.imnet_model['backbone'],
                         self.student_module.backbone)
            if 'neck' in self.imnet_model:
                copy_weights(self.imnet_model['neck'],
                             self.student_module.neck)

    def _seg_loss(self, logits, label: Tensor, weight: Optional[Tensor],
                  prefix: str, scale: float = 1.0,
                  scale_detail: bool = True) -> Dict[str, Tensor]:
        """Decode-head losses with a per-pixel weight (mmseg 1.x dropped
        ``seg_weight`` from ``loss_by_feat``; we call its loss modules).

        ``logits`` is a tensor, or an HRDA student's training output
        (``dict(fused, lr, hr, hr_box)``), whose head says which outputs
        are supervised with which factor (fused, detail on the cropped
        label, ...); those terms are logged as ``{prefix}.hr.loss_ce``.
        ``scale`` multiplies the fused term, and the detail / context
        terms too unless ``scale_detail=False`` (MIC's ``mask_lambda``:
        the reference scales ``decode.loss_seg`` only)."""
        head = self.student_module.decode_head
        if isinstance(logits, dict):
            terms = head.loss_terms(logits, label, weight)
        elif isinstance(logits, (tuple, list)):
            # a multi-output head (mmseg's DAHead: pam_cam, pam, cam): the
            # first output is the prediction, each output its own loss
            names = MULTI_OUTPUT_NAMES.get(
                type(head).__name__,
                [''] + [f'out{i}' for i in range(1, len(logits))])
            terms = [(n, 1.0, lg, label, weight)
                     for n, lg in zip(names, logits)]
        else:
            terms = [('', 1.0, logits, label, weight)]
        losses_decode = (head.loss_decode if isinstance(
            head.loss_decode, nn.ModuleList) else [head.loss_decode])
        out: Dict[str, Tensor] = {}
        total = label.new_zeros((), dtype=torch.float32)
        for name, factor, lgt, lbl, w in terms:
            lgt = resize(lgt, size=lbl.shape[-2:], mode='bilinear',
                         align_corners=self.align_corners)
            key = f'{prefix}.{name}.' if name else f'{prefix}.'
            s = scale if (scale_detail or not name) else 1.0
            for loss_decode in losses_decode:
                v = loss_decode(lgt, lbl, weight=w,
                                ignore_index=self.ignore_index)
                out[key + loss_decode.loss_name] = v * (s * factor)
                total = total + v * (s * factor)
            if not name:  # accuracy of the (fused) prediction
                with torch.no_grad():
                    valid = lbl != self.ignore_index
                    hit = (lgt.argmax(1) == lbl) & valid
                    acc = hit.sum().float() / valid.sum().clamp(min=1)
                out[f'{prefix}.acc_seg'] = acc * 100
        out[f'{prefix}.loss'] = total
        return out

    @property
    def _train_mode(self) -> str:
        # an HRDA student trains on a random detail crop + the context
        return ('train_logits' if hasattr(self.student_module,
                                          'train_logits') else 'tensor')

    def _student_logits(self, inputs: Tensor, mode: Optional[str] = None):
        # through the (DDP) wrapper's forward so gradient sync is prepared
        return self.student(inputs, None, mode=mode or self._train_mode)

    @staticmethod
    def _gt(data_samples: SampleList, key: str = 'gt_sem_seg') -> Tensor:
        return torch.stack([getattr(ds, key).data for ds in data_samples
                            ]).squeeze(1).long()

    def _feature_distance(self, inputs: Tensor, gt: Tensor,
                          feats: List[Tensor]) -> Tensor:
        with torch.no_grad():
            self.imnet_model.eval()
            # HRDA: the student's features are the context's (scale 0.5)
            s = getattr(self.student_module, 'feature_scale', 1)
            if s != 1:
                inputs = resize(inputs, scale_factor=s, mode='bilinear',
                                align_corners=self.align_corners)
            f_imnet = self.imnet_model['backbone'](inputs)
            if 'neck' in self.imnet_model:
                f_imnet = self.imnet_model['neck'](f_imnet)
        f_s, f_i = feats[-1], f_imnet[-1].detach()
        mask = thing_mask(gt[:, None], f_s, self.fd_classes,
                          self.fd_scale_min_ratio, self.num_classes,
                          self.ignore_index)
        return self.fd_lambda * masked_feat_dist(f_s, f_i, mask)

    # --------------------------------------------------------- training
    def train_step(self, data, optim_wrapper: OptimWrapper):
        """One UDA iteration (called by the Runner's train loop)."""
        data = self.data_preprocessor(data, True)
        src_img, src_samples = data['inputs'], data['data_samples']
        src_gt = self._gt(src_samples)
        if self.uses_target and 'target_inputs' not in data:
            raise KeyError(
                'UDASegmentor: the batch has no `target_inputs`, but DACS mix '
                'or MIC is on. Train with `UDADataset(source=..., target=...)`'
                ', or set source_only=True (or mix=None and mask_lambda=0) '
                'for source-only.')
        if self.dual_branch_lambda > 0 and 'dist_inputs' not in data:
            raise KeyError(
                'UDASegmentor: dual_branch_lambda > 0 but the batch has no '
                '`dist_inputs`: add DualBranchAug and PackDualBranchSegInputs '
                'to the source pipeline.')
        it = int(self.local_iter)
        # the teacher(s) of iteration `it`: a copy of the student at 0; for
        # it > 0 the EMA step was taken at the end of iteration it - 1,
        # after its optimizer step (see _update_teachers)
        if it == 0:
            if self.teacher is not None:  # the reference's params only
                copy_weights(self.teacher, self.student_module,
                             buffers=self._copy_buffers)
            if self.mic is not None:
                self.mic.update_teacher(self.student_module, 0, self.alpha)
        elif getattr(self, '_teacher_behind', False):
            # a checkpoint written before the EMA step moved to the end of
            # the iteration holds the teacher of iteration it - 1
            self._update_teachers(it)
        self._teacher_behind = False

        pre = self.data_preprocessor
        src_mean, src_std = pre.domain_stats('source')
        tgt_mean, tgt_std = pre.domain_stats('target')
        log: Dict[str, Tensor] = {}

        # pseudo-labels from the teacher(s) on the un-augmented target
        pseudo = mic_pseudo = None
        if self.uses_target:
            tgt_img = data['target_inputs']
            if tgt_img.shape[-2:] != src_img.shape[-2:]:
                raise ValueError(
                    'UDASegmentor: source and target crops differ in size '
                    f'({tuple(src_img.shape[-2:])} vs '
                    f'{tuple(tgt_img.shape[-2:])}); use the same crop_size '
                    'in both pipelines (mixing needs aligned pixels).')
            if self.needs_pseudo_labels:
                *pseudo, p_scalar = self._pseudo_labels(
                    self.teacher, tgt_img, self.pseudo_threshold,
                    data.get('target_valid_pseudo_mask'))
                log['pseudo_weight'] = p_scalar
            mic_pseudo = pseudo
            if self.mic is not None and self.mic.teacher is not None \
                    and self.mic.uses_target:
                *mic_pseudo, m_scalar = self._pseudo_labels(
                    self.mic.teacher, tgt_img,
                    self.mic.resolve(self.alpha, self.pseudo_threshold)[1],
                    data.get('target_valid_pseudo_mask'))
                log['masked.pseudo_weight'] = m_scalar

        terms = ['src']
        if self.dual_branch_lambda > 0:
            terms.append('dist')
        if self.mix is not None:
            terms.append('mix')
        if self.mic is not None:
            terms.append('masked')

        vis = {}
        want_vis = (self.vis_interval > 0 and it % self.vis_interval == 0)
        start_count = optim_wrapper._inner_count
        student_ddp = is_model_wrapper(self.student)
        total = src_img.new_zeros(())
        for i, term in enumerate(terms):
            last = i == len(terms) - 1
            # every term belongs to this iteration: backward() counts one
            # update per term, which would make should_sync() / scale_loss()
            # answer for a later iteration under gradient accumulation
            optim_wrapper._inner_count = start_count
            sync_ctx = (self.student.no_sync() if student_ddp and (
                not last or not optim_wrapper.should_sync()) else
                nullcontext())
            with sync_ctx, optim_wrapper.optim_context(self):
                losses = self._term_losses(term, data, src_gt,
                                           pseudo, mic_pseudo,
                                           (src_mean, src_std),
                                           (tgt_mean, tgt_std), vis,
                                           want_vis)
            # the per-term totals ('src.loss', 'fd.loss', ...), not their parts
            loss = sum(v for k, v in losses.items() if k.endswith('.loss'))
            self._check_finite(loss, term, it, optim_wrapper)
            optim_wrapper.backward(optim_wrapper.scale_loss(loss))
            total = total + loss.detach()
            log.update({k: v.detach() for k, v in losses.items()})
        # one update per iteration however many terms were back-propagated
        optim_wrapper._inner_count = start_count + 1
        stepped = optim_wrapper.should_update()
        if stepped:
            optim_wrapper.step()
            optim_wrapper.zero_grad()
        log['loss'] = total
        if want_vis:
            self._log_panel(data, pseudo, vis, it, (src_mean, src_std),
                            (tgt_mean, tgt_std))
        guard = getattr(optim_wrapper, '_nan_guard', None)
        if guard is not None and guard.skipping:
            # NaNGuardHook(action='skip') dropped this iteration (on this
            # or another rank): no step was taken, so the teachers and the
            # counter stay as they are
            return log
        self.local_iter += 1
        if stepped:
            self._update_teachers(it + 1)
        return log

    @torch.no_grad()
    def _update_teachers(self, it: int):
        """EMA step of the teacher(s) for iteration ``it`` (>= 1), taken at
        the end of iteration ``it - 1`` right after its optimizer step.

        The reference takes it at the start of iteration ``it``; nothing
        changes the student in between, so every iteration sees the same
        teacher (same α = ``ema_alpha(it)``, same student weights and BN
        statistics). Taking it here means an iteration that
        ``NaNGuardHook(action='skip')`` drops (no step) never touches the
        teachers, and a checkpoint written after iteration ``it - 1`` holds
        the teacher of iteration ``it`` (with ``local_iter == it``).

        With gradient accumulation the teachers move only after an actual
        optimizer step (between steps the student does not change: one EMA
        step per update, α from the UDA iteration counter).
        """
        if self.teacher is not None:
            ema_update(self.teacher, self.student_module,
                       ema_alpha(it, self.alpha),
                       copy_buffers=self._copy_buffers)
        if self.mic is not None:
            self.mic.update_teacher(self.student_module, it, self.alpha)

    # checkpoints of version < 2 hold the teacher *before* the EMA step of
    # their `local_iter` (it was taken at the start of the iteration)
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)
        # only an explicit old version (metadata written by torch/mmengine);
        # a plain dict without metadata is taken as current
        self._teacher_behind = local_metadata.get('version', 2) < 2

    def _check_finite(self, loss: Tensor, term: str, it: int,
                      optim_wrapper: OptimWrapper):
        if torch.isfinite(loss):
            return
        guard = getattr(optim_wrapper, '_nan_guard', None)
        if guard is not None:
            # NaNGuardHook wraps backward/step: it agrees with the other
            # ranks, then stops (naming this term) or refuses this backward,
            # the remaining terms' and the step ('skip'); the teachers and
            # `local_iter` are then not advanced (see train_step)
            from mmengine.logging import print_log
            guard.name_terms({f'{term}.loss': loss})
            print_log(f'UDASegmentor: loss term `{term}` is {loss.item()} '
                      f'at UDA iteration {it}; NaNGuardHook(action='
                      f'{guard.action!r}) handles it', logger='current',
                      level=30)
            return
        raise FloatingPointError(
            f'UDASegmentor: loss term `{term}` is {loss.item()} at UDA '
            f'iteration {it}; stopping before the optimizer step so no '
            'NaN reaches the weights or a checkpoint.')

    @torch.no_grad()
    def _pseudo_labels(self, teacher: nn.Module, tgt_img: Tensor,
                       threshold: float,
                       valid_mask: Optional[Tensor] = None):
        """``valid_mask``: (N, H, W) dataset-level valid-pseudo-label mask
        (``target.crop_pseudo_margins``), multiplied into the weight."""
        logits = teacher(tgt_img, None, mode='tensor')
        if isinstance(logits, (tuple, list)):  # multi-output head
            logits = logits[0]
        logits = resize(logits, size=tgt_img.shape[-2:], mode='bilinear',
                        align_corners=self.align_corners)
        return pseudo_label_and_weight(logits, threshold, *self.pseudo_ignore,
                                       valid_mask=valid_mask)

    @property
    def _jitter(self) -> dict:
        return dict(color_jitter_strength=self.color_jitter_strength,
                    color_jitter_prob=self.color_jitter_prob,
                    gate=self.strong_aug_gate)

    def _term_losses(self, term, data, src_gt, pseudo, mic_pseudo, src_stats,
                     tgt_stats, vis, want_vis) -> Dict[str, Tensor]:
        src_img = data['inputs']
        if term == 'src':
            feats = []
            handle = None
            if self.fd_lambda > 0:
                module = (self.student_module.neck if
                          self.student_module.with_neck else
                          self.student_module.backbone)
                handle = module.register_forward_hook(
                    lambda m, i, o: feats.append(o))
            try:
                logits = self._student_logits(src_img)
            finally:
                if handle is not None:
                    handle.remove()
            losses = self._seg_loss(logits, src_gt, None, 'src')
            if self.fd_lambda > 0:
                losses['fd.loss'] = self._feature_distance(
                    src_img, src_gt, list(feats[0]))
            return losses
        if term == 'dist':
            dist_img = data['dist_inputs']
            dist_gt = self._gt(data['dist_data_samples'])
            if want_vis:
                vis['dist'] = (dist_img[:1].detach(), src_stats)
            logits = self._student_logits(dist_img)
            return self._seg_loss(logits, dist_gt, None, 'dist',
                                  self.dual_branch_lambda)
        tgt_img = data.get('target_inputs')
        if term == 'mix':
            mixed, mixed_lbl, mixed_w, _ = class_mix(
                src_img, tgt_img, src_gt, *pseudo, src_stats, tgt_stats,
                self.ignore_index, self.class_mix_pool,
                dict(self._jitter, blur=self.blur))
            logits = self._student_logits(mixed)
            return self._seg_loss(logits, mixed_lbl, mixed_w, 'mix')
        if term == 'masked':
            masked, lbl, weight = self.mic(src_img, src_gt, tgt_img,
                                           mic_pseudo, src_stats, tgt_stats,
                                           self._jitter)
            logits = self._student_logits(masked)
            if want_vis:
                vis['masked'] = (masked[:1].detach(),
                                 src_stats if 'src' in self.mic.mask_mode
                                 else tgt_stats)
            # the reference scales the fused term only
            # (masked_loss['decode.loss_seg'] *= mask_lambda)
            return self._seg_loss(logits, lbl, weight, 'masked',
                                  self.mask_lambda, scale_detail=False)
        raise KeyError(term)

    # ------------------------------------------------------- visualisation
    @torch.no_grad()
    def _log_panel(self, data, pseudo, vis, it, src_stats, tgt_stats):
        from mmengine.dist import is_main_process
        from mmengine.visualization import Visualizer
        if not is_main_process():
            return
        try:
            visualizer = Visualizer.get_current_instance()
        except RuntimeError:  # no Runner/visualizer: nothing to log to
            return
        meta = getattr(visualizer, 'dataset_meta', None) or {}
        palette = palette_for(self.num_classes, meta.get('palette'))
        tiles = []

        def img_tile(x, stats):
            x = denormalize(x, *stats)[0].permute(1, 2, 0)
            return x.round().to(torch.uint8).cpu()

        def lbl_tile(lbl):
            return colorize(lbl.cpu(), palette, self.ignore_index)

        if 'target_inputs' in data:
            tgt = data['target_inputs'][:1]
            tiles.append(img_tile(tgt, tgt_stats))
            if pseudo is not None:
                tiles.append(lbl_tile(pseudo[0][0]))
            self.student_module.eval()
            pred = self._student_logits(tgt, mode='tensor')
            self.student_module.train()
            pred = resize(pred, size=tgt.shape[-2:], mode='bilinear',
                          align_corners=self.align_corners).argmax(1)[0]
            tiles.append(lbl_tile(pred))
        else:
            tiles.append(img_tile(data['inputs'][:1], src_stats))
        if 'masked' in vis:
            tiles.append(img_tile(*vis['masked']))
        if 'dist' in vis:
            tiles.append(img_tile(*vis['dist']))
        h = min(t.shape[0] for t in tiles)
        tiles = [t[:h] for t in tiles]
        panel = torch.cat(tiles, dim=1).numpy()
        visualizer.add_image('uda_panel', panel, step=it)

    # ------------------------------------------------------ val / predict
    @property
    def eval_segmentor(self) -> nn.Module:
        return (self.student_module
                if self.eval_model == 'student' else self.teacher)

    @property
    def out_channels(self) -> int:
        """Logit channels of the eval segmentor (``SegTTAModel`` reads it)."""
        return self.eval_segmentor.out_channels

    @property
    def decode_head(self) -> nn.Module:
        """The eval segmentor's decode head (``SegTTAModel`` reads its
        ``threshold`` for binary heads)."""
        return self.eval_segmentor.decode_head

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                           'predict and tensor mode')

    def loss(self, inputs, data_samples):
        raise RuntimeError(
            'UDASegmentor runs its own train_step. Under DDP it must be '
            "wrapped with model_wrapper_cfg=dict(type='MMSeparateDistributed"
            "DataParallel') (set in configs/_base_/uda/*.py); the default "
            'MMDistributedDataParallel bypasses train_step.')

    def predict(self, inputs, data_samples=None):
        return self.eval_segmentor.predict(inputs, data_samples)

    def _forward(self, inputs, data_samples=None):
        return self.eval_segmentor._forward(inputs, data_samples)

    def extract_feat(self, inputs):
        return self.eval_segmentor.extract_feat(inputs)

    def encode_decode(self, inputs, batch_data_samples):
        return self.eval_segmentor.encode_decode(inputs, batch_data_samples)
