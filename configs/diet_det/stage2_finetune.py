# Diet recipe, stage 2: fine-tune the stage-1 model on the full distribution
# with gentler augmentation and a lower learning rate.
#   python tools/train.py configs/diet_det/stage2_finetune.py \
#       --cfg-options load_from=$(cat work_dirs/stage1_diet/last_checkpoint)
_base_ = './rtmdet_tiny_full_data.py'

load_from = 'work_dirs/stage1_diet/epoch_40.pth'  # stage1_diet.py's last

img_scale = (192, 192)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    # gentler than stage 1: narrower scale jitter, no colour jitter
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.85, 1.15),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=img_scale),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# full data (DefaultSampler of the base): 75 iterations per epoch
max_epochs = 6
base_lr = 0.0005
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=0,
         end=max_epochs, T_max=max_epochs, by_epoch=True,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=2))
