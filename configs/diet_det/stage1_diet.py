# Diet recipe, stage 1 (1st place, 2021 driver-inattention detection):
# train on a rule-based diet subset, each epoch a random 1/epoch_parts of it.
#   python tools/make_det_demo_data.py --out data/driver_demo
#   python tools/train.py configs/diet_det/stage1_diet.py
# then stage2_finetune.py fine-tunes on the full distribution.
_base_ = './rtmdet_tiny_full_data.py'

train_dataloader = dict(
    sampler=dict(
        _delete_=True,
        type='DietSampler',
        # the reference rule set; the first rule an image matches decides
        rules=[
            dict(any_of=['cigar', 'phone']),                  # 1 keep
            dict(all_of=['eye_closed', 'mouth_closed']),      # 2 keep
            dict(all_of=['eye_closed', 'mouth_opened']),      # 3 keep
            dict(any_of=['mouth_opened'], keep_every=3),      # 4 every 3rd
        ],
        default_keep=False,                                   # 5 drop rest
        epoch_parts=2,
        replacement=False))

# ~190 diet images / epoch_parts 2 / batch 8 = 12 iterations per epoch
max_epochs = 40
base_lr = 0.002
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=0,
         end=max_epochs, T_max=max_epochs, by_epoch=True,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=10))
