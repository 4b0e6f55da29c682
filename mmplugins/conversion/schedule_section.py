"""Reference optimizer / ``lr_config`` / ``runner`` / ``evaluation`` /
``checkpoint_config`` -> ``optim_wrapper``, ``param_scheduler``,
``train_cfg``, evaluators and the checkpoint hook."""
from .base import SectionBase


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


class ScheduleSection(SectionBase):
    """Optimizer, schedule, evaluation, checkpoints (mixed into the
    Converter)."""

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
        evaluator = self._evaluator([m for m in metrics if m not in bad])
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
