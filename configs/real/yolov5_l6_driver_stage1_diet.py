# The 1st-place recipe of the 2021 driver-inattention detection challenge
# (image track), stage 1: YOLOv5-l6 (P6, 1280 px) from scratch on the
# rule-based diet subset, epoch_parts=15, 300 epochs, hyp.scratch-p6.
# configs/diet_det/yolov5_n_stage1_diet.py is this recipe at demo scale.
#   data/driver/annotations/instances_{train,val}.json + train/ val/ (COCO,
#   the 7 classes below)
#   tools/dist_train.sh configs/real/yolov5_l6_driver_stage1_diet.py 8
# then configs/real/yolov5_l6_driver_stage2_finetune.py, and the ensemble of
# both (tools/test.py ... test_evaluator.outfile_prefix=..., then
# tools/ensemble_det.py; docs/diet.md). Needs mmyolo (make install).
_base_ = 'mmyolo::yolov5/yolov5_l-p6-v62_syncbn_fast_8xb16-300e_coco.py'
custom_imports = dict(imports=['mmplugins'], allow_failed_imports=False)
default_scope = 'mmyolo'

data_root = 'data/driver/'
metainfo = dict(
    classes=('eye_opened', 'eye_closed', 'mouth_opened', 'mouth_closed',
             'face', 'phone', 'cigar'))
num_classes = 7
img_scale = _base_.img_scale            # (1280, 1280)
num_det_layers = _base_.num_det_layers  # 4 (P3-P6)
max_epochs = 300
# hyp.scratch-p6 of the reference (data/hyp.scratch-p6.yaml of the winning
# YOLOv5 fork): lr0 0.01, lrf 0.2, momentum 0.937, weight_decay 0.0005,
# warmup 3 epochs, box 0.05, cls 0.3, obj 0.7, anchor_t 4.0, hsv_h 0,
# hsv_s 0, hsv_v 0.4, translate 0.1, scale 0.9, fliplr 0.5, mosaic 1.0,
# mixup 0.0; mmyolo scales the gains like YOLOv5 does.
base_lr = 0.01
lr_factor = 0.2
loss_cls_weight, loss_bbox_weight, loss_obj_weight = 0.3, 0.05, 0.7

model = dict(
    bbox_head=dict(
        head_module=dict(num_classes=num_classes),
        loss_cls=dict(loss_weight=loss_cls_weight *
                      (num_classes / 80 * 3 / num_det_layers)),
        loss_bbox=dict(loss_weight=loss_bbox_weight * (3 / num_det_layers)),
        loss_obj=dict(loss_weight=loss_obj_weight *
                      ((img_scale[0] / 640)**2 * 3 / num_det_layers)),
        prior_match_thr=4.0))

pre_transform = _base_.pre_transform
# YOLOv5's pipeline without albumentations (the fork has none) and without
# mixup (0.0)
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
    dict(type='YOLOv5HSVRandomAug', hue_delta=0.0, saturation_delta=0.0,
         value_delta=0.4),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                   'flip_direction'))
]

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        # mosaic partners from the diet (the reference trained on the diet
        # file list, so YOLOv5's load_mosaic drew from it)
        type='SubsetMixDataset',
        partners='subset',
        dataset=dict(
            type='YOLOv5CocoDataset',
            data_root=data_root,
            metainfo=metainfo,
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='train/'),
            filter_cfg=dict(filter_empty_gt=False, min_size=32),
            pipeline=train_pipeline)),
    sampler=dict(
        _delete_=True,
        type='DietSampler',
        rules=[
            dict(any_of=['cigar', 'phone']),                  # 1 keep
            dict(all_of=['eye_closed', 'mouth_closed']),      # 2 keep
            dict(all_of=['eye_closed', 'mouth_opened']),      # 3 keep
            dict(any_of=['mouth_opened'], keep_every=3),      # 4 every 3rd
        ],
        default_keep=False,                                   # 5 drop rest
        epoch_parts=15,
        # the reference's sampler: RandomSampler(replacement=True,
        # num_samples=len // epoch_parts) (its multi-GPU path took disjoint
        # parts of a permutation: replacement=False)
        replacement=True))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/instances_val.json', classwise=True)
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=base_lr))
default_hooks = dict(
    param_scheduler=dict(lr_factor=lr_factor, max_epochs=max_epochs))
train_cfg = dict(max_epochs=max_epochs)
# the sampler draws are a function of the seed: fixed for exact resumes
randomness = dict(seed=0)
