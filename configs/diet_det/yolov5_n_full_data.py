# Baseline of the YOLOv5 diet recipe at demo scale: mmyolo's YOLOv5-n (P5)
# from scratch on the full (imbalanced) driver demo data, 192 px, with the
# reference's stage-1 augmentation (hyp.scratch-p6: mosaic 1.0, mixup 0,
# HSV value 0.4 only, translate 0.1, scale 0.9, fliplr 0.5).
# yolov5_n_stage1_diet.py / yolov5_n_stage2_finetune.py change the sampler,
# the augmentation and the schedule of this file. Needs mmyolo (make install).
#   python tools/make_det_demo_data.py --out data/driver_demo
#   python tools/train.py configs/diet_det/yolov5_n_full_data.py
_base_ = 'mmyolo::yolov5/yolov5_n-v61_syncbn_fast_8xb16-300e_coco.py'
custom_imports = dict(imports=['mmplugins'], allow_failed_imports=False)
default_scope = 'mmyolo'

data_root = 'data/driver_demo/'
metainfo = dict(
    classes=('eye_opened', 'eye_closed', 'mouth_opened', 'mouth_closed',
             'face', 'phone', 'cigar'),
    palette=[(0, 200, 0), (220, 20, 60), (255, 140, 0), (0, 120, 255),
             (200, 200, 200), (160, 32, 240), (255, 215, 0)])
num_classes = 7
img_scale = (192, 192)  # width, height (the demo images are 192 px)
num_det_layers = 3
# mmyolo's COCO anchors (for 640 px) scaled by 192 / 640
anchors = [
    [(3, 4), (5, 9), (10, 7)],
    [(9, 18), (19, 14), (18, 36)],
    [(35, 27), (47, 59), (112, 98)],
]
train_batch_size_per_gpu = 8
base_lr = 0.01
lr_factor = 0.2          # hyp.scratch-p6 lrf
max_epochs = 12
warmup_epochs = 3
warmup_mim_iter = 30     # mmyolo's (and YOLOv5's) minimum is 1000 iterations
# hyp.scratch-p6 gains; mmyolo scales them as YOLOv5 does
loss_cls_weight, loss_bbox_weight, loss_obj_weight = 0.3, 0.05, 0.7
prior_match_thr = 4.0    # anchor_t

model = dict(
    bbox_head=dict(
        head_module=dict(num_classes=num_classes),
        prior_generator=dict(base_sizes=anchors),
        loss_cls=dict(loss_weight=loss_cls_weight *
                      (num_classes / 80 * 3 / num_det_layers)),
        loss_bbox=dict(loss_weight=loss_bbox_weight * (3 / num_det_layers)),
        loss_obj=dict(loss_weight=loss_obj_weight *
                      ((img_scale[0] / 640)**2 * 3 / num_det_layers)),
        prior_match_thr=prior_match_thr))

pre_transform = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True)
]
train_pipeline = [
    *pre_transform,
    dict(type='Mosaic', img_scale=img_scale, pad_val=114.0,
         pre_transform=pre_transform),
    dict(
        type='YOLOv5RandomAffine',
        max_rotate_degree=0.0,
        max_shear_degree=0.0,
        max_translate_ratio=0.1,
        scaling_ratio_range=(1 - 0.9, 1 + 0.9),
        border=(-img_scale[0] // 2, -img_scale[1] // 2),
        border_val=(114, 114, 114)),
    # hyp.scratch-p6: hsv_h 0, hsv_s 0, hsv_v 0.4
    dict(type='YOLOv5HSVRandomAug', hue_delta=0.0, saturation_delta=0.0,
         value_delta=0.4),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                   'flip_direction'))
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='YOLOv5KeepRatioResize', scale=img_scale),
    dict(type='LetterResize', scale=img_scale, allow_scale_up=False,
         pad_val=dict(img=114)),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'pad_param'))
]

train_dataloader = dict(
    batch_size=train_batch_size_per_gpu,
    num_workers=2,
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(
        type='YOLOv5CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(
        type='YOLOv5CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        batch_shapes_cfg=None))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='mmdet.CocoMetric',
    proposal_nums=(100, 1, 10),
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    classwise=True)
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(lr=base_lr, batch_size_per_gpu=train_batch_size_per_gpu))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(
        lr_factor=lr_factor,
        max_epochs=max_epochs,
        warmup_epochs=warmup_epochs,
        warmup_mim_iter=warmup_mim_iter),
    checkpoint=dict(interval=4, max_keep_ckpts=2, save_best=None,
                    save_last=True))
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
# CPU / single process: plain BN is what the base uses (no SyncBN here)
env_cfg = dict(cudnn_benchmark=False)
# a fixed seed makes the sampler draws reproducible across resumes
randomness = dict(seed=0)
