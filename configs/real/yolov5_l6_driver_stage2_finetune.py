# The 1st-place driver-inattention recipe, stage 2: fine-tune stage 1's
# YOLOv5-l6 on the full distribution, 50 epochs, epoch_parts=50, with the
# reference's hyp.finetune-simple: no mosaic, no HSV augmentation, no scale
# jitter (translate 0.1 and fliplr 0.5 stay), lr0 0.0032, lrf 0.12, momentum
# 0.843, weight_decay 0.00036, warmup 2 epochs, box 0.0296, cls 0.243,
# obj 0.301, anchor_t 2.91. The submission ensembled this model with stage
# 1's (tools/ensemble_det.py).
#   tools/dist_train.sh configs/real/yolov5_l6_driver_stage2_finetune.py 8 \
#       --cfg-options load_from=$(cat work_dirs/yolov5_l6_driver_stage1_diet/last_checkpoint)
_base_ = './yolov5_l6_driver_stage1_diet.py'

load_from = 'work_dirs/yolov5_l6_driver_stage1_diet/epoch_300.pth'

img_scale = _base_.img_scale
num_classes = _base_.num_classes
num_det_layers = _base_.num_det_layers
data_root = _base_.data_root
max_epochs = 50
base_lr = 0.0032
lr_factor = 0.12
loss_cls_weight, loss_bbox_weight, loss_obj_weight = 0.243, 0.0296, 0.301

model = dict(
    bbox_head=dict(
        loss_cls=dict(loss_weight=loss_cls_weight *
                      (num_classes / 80 * 3 / num_det_layers)),
        loss_bbox=dict(loss_weight=loss_bbox_weight * (3 / num_det_layers)),
        loss_obj=dict(loss_weight=loss_obj_weight *
                      ((img_scale[0] / 640)**2 * 3 / num_det_layers)),
        prior_match_thr=2.91))

# YOLOv5 without mosaic: resize (long side), letterbox, random_perspective
# with translate only
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
    dataset=dict(
        _delete_=True,
        type='YOLOv5CocoDataset',
        data_root=data_root,
        metainfo=_base_.metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=False, min_size=32),
        pipeline=train_pipeline),
    sampler=dict(
        _delete_=True,
        type='EpochPartsSampler',
        epoch_parts=50,
        replacement=True))

optim_wrapper = dict(
    optimizer=dict(lr=base_lr, momentum=0.843, weight_decay=0.00036))
default_hooks = dict(
    param_scheduler=dict(lr_factor=lr_factor, max_epochs=max_epochs,
                         warmup_epochs=2, warmup_momentum=0.5,
                         warmup_bias_lr=0.05))
train_cfg = dict(max_epochs=max_epochs)
