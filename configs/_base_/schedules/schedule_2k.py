# Short iteration schedule for the demo: SegFormer's AdamW recipe (mmseg:
# lr 6e-5, head lr x10, no decay on norms / positional blocks), linear
# warm-up then poly decay, scaled from 160k to 2k iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-05, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=150),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=150, end=2000,
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
