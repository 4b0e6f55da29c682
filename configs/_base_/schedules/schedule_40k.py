# DAFormer / MIC schedule for real data: AdamW lr 6e-5 (head x10, no decay on
# norms / positional blocks), 1500 linear warm-up iterations (from a factor
# of 1e-6) multiplied onto a poly decay (power 1) to 0 at 40k iterations,
# batch 2 per GPU. See schedule_2k.py for why end = iterations + 1.
_base_ = ['./schedule_2k.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500 + 1),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=40000 + 1,
         by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000,
                 val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
