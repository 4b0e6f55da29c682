# Short iteration schedule for the demo: SegFormer's AdamW recipe as DAFormer
# / MIC use it (mmseg 0.x: lr 6e-5, head lr x10, no decay on norms /
# positional blocks), linear warm-up and poly decay, scaled from 1500 of 40k
# to 150 of 2000 iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-05, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.),
            # mmseg 0.x names MiT's per-stage LayerNorms norm1..norm4, so the
            # reference's 'norm' key exempts them; mmseg 1.x's
            # MixVisionTransformer names them backbone.layers.{i}.2 (a name
            # without 'norm'). The trailing dot keeps each key to that one
            # module (blocks live under backbone.layers.{i}.1.{j}).
            'backbone.layers.0.2.': dict(decay_mult=0.),
            'backbone.layers.1.2.': dict(decay_mult=0.),
            'backbone.layers.2.2.': dict(decay_mult=0.),
            'backbone.layers.3.2.': dict(decay_mult=0.),
        }))
# mmcv 1.x's poly policy with linear warm-up, as the reference runs it:
#   lr(t) = lr * (1 - t / max_iters)**power * w(t),
#   w(t) = 1 - (1 - t / warmup_iters) * (1 - warmup_ratio) for t < warmup_iters
# (t = 0-based iteration, w = 1 afterwards). Both schedulers run from 0 and
# mmengine chains them multiplicatively. mmengine's LinearLR / PolyLR reach
# their final factor at step end - 1 (total_iters = end - begin - 1), so
# end = warmup_iters + 1 and end = max_iters + 1 give the closed form above
# exactly (end = max_iters would divide by max_iters - 1 instead and
# reach lr 0 one iteration early). Scaling the run: keep begin=0 and set
# param_scheduler.0.end = warm-up + 1, param_scheduler.1.end = iters + 1.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=150 + 1),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=2000 + 1,
         by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        # write-then-rename: a kill mid-save never leaves a truncated latest
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=500,
        max_keep_ckpts=2,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
