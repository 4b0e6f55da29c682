# YOLOv5 diet recipe, stage 2 at demo scale: fine-tune the stage-1 model on
# the full distribution, each epoch a random 1/epoch_parts of it, with the
# reference's hyp.finetune-simple: no mosaic, no HSV at all, no scale jitter
# (translate 0.1 and fliplr 0.5 stay), its lr / momentum / weight decay /
# loss gains / anchor_t. configs/real/yolov5_l6_stage2_finetune.py is the
# full-size recipe (epoch_parts=50, 50 epochs).
#   python tools/train.py configs/diet_det/yolov5_n_stage2_finetune.py \
#       --cfg-options load_from=$(cat work_dirs/yolov5_n_stage1_diet/last_checkpoint)
_base_ = './yolov5_n_full_data.py'

load_from = 'work_dirs/yolov5_n_stage1_diet/epoch_40.pth'  # stage 1's last

img_scale = _base_.img_scale
num_classes = _base_.num_classes
num_det_layers = _base_.num_det_layers
# hyp.finetune-simple
base_lr = 0.0032
lr_factor = 0.12
momentum = 0.843
weight_decay = 0.00036
warmup_epochs = 2
loss_cls_weight, loss_bbox_weight, loss_obj_weight = 0.243, 0.0296, 0.301
prior_match_thr = 2.91

model = dict(
    bbox_head=dict(
        loss_cls=dict(loss_weight=loss_cls_weight *
                      (num_classes / 80 * 3 / num_det_layers)),
        loss_bbox=dict(loss_weight=loss_bbox_weight * (3 / num_det_layers)),
        loss_obj=dict(loss_weight=loss_obj_weight *
                      ((img_scale[0] / 640)**2 * 3 / num_det_layers)),
        prior_match_thr=prior_match_thr))

# YOLOv5 without mosaic: the image resized to img_scale (long side), letter-
# boxed, then random_perspective with translate only
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='YOLOv5KeepRatioResize', scale=img_scale),
    dict(type='LetterResize', scale=img_scale, allow_scale_up=True,
         pad_val=dict(img=114)),
    dict(
        type='YOLOv5RandomAffine',
        max_rotate_degree=0.0,
        max_shear_degree=0.0,
        max_translate_ratio=0.1,
        scaling_ratio_range=(1.0, 1.0),
        border=(0, 0),
        border_val=(114, 114, 114)),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                   'flip_direction', 'scale_factor', 'pad_param'))
]
train_dataloader = dict(
    dataset=dict(pipeline=train_pipeline),
    sampler=dict(
        _delete_=True,
        type='EpochPartsSampler',
        # the reference: 50; the demo's 600 images: 2
        epoch_parts=2,
        replacement=True))

max_epochs = 6
optim_wrapper = dict(
    optimizer=dict(lr=base_lr, momentum=momentum,
                   weight_decay=weight_decay))
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
default_hooks = dict(
    param_scheduler=dict(lr_factor=lr_factor, max_epochs=max_epochs,
                         warmup_epochs=warmup_epochs, warmup_momentum=0.5,
                         warmup_bias_lr=0.05),
    checkpoint=dict(interval=2))
