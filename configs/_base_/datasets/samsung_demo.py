# Synthetic demo of the 2023 Samsung camera-invariant DA challenge
# (`python tools/make_demo_data.py`, 256x512 images). Source = pinhole,
# labelled; target = fisheye, train split unlabelled; we validate on the
# labelled TARGET val split, as the task is to do well on the target camera.
# Pipelines follow DAFormer's (fixed resize + random crop + flip, no
# photometric distortion: UDA methods add their own augmentation).
dataset_type = 'SamsungCameraDADataset'
data_root = 'data/samsung_demo'
num_classes = 12
img_scale = (512, 256)  # (w, h): the demo's native size
crop_size = (128, 256)  # (h, w): a quarter image, cheap on CPU

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# unlabelled target images: no LoadAnnotations, no label-aware crop
target_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# labels are loaded after Resize: metrics are computed at the original size
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='PackSegInputs'),
]

# test-time augmentation (tools/test.py --tta, tools/predict.py --tta), as
# mmseg's configs: the test scale times each ratio, unflipped and flipped;
# SegTTAModel (default_runtime.py) averages the views' softmax at the
# original size. Mirrors the test pipeline (labels loaded after Resize).
tta_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize',
                     scale=(int(img_scale[0] * r), int(img_scale[1] * r)),
                     keep_ratio=True) for r in tta_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='CheckSegLabel', num_classes=num_classes)],
            [dict(type='PackSegInputs')],
        ])
]

source_train_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(
        img_path='train_source_image', seg_map_path='train_source_gt'),
    pipeline=train_pipeline)
target_train_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='train_target_image'),
    pipeline=target_train_pipeline)
source_val_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='val_source_image',
                     seg_map_path='val_source_gt'),
    test_mode=True,
    pipeline=test_pipeline)
target_val_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='val_target_image',
                     seg_map_path='val_target_gt'),
    test_mode=True,
    pipeline=test_pipeline)

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=source_train_dataset)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=target_val_dataset)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
