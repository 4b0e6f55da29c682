# The real 2023 Samsung camera-invariant DA challenge data, indexed by its
# CSV files (paths relative to data_root). Source images are ~2048x1024
# pinhole frames, target images ~1920x1080 fisheye frames; img_scale halves
# both (source 1024x512, target 960x540 = the challenge's submission size)
# and training crops 512x512, as DAFormer does for Cityscapes.
# The official release has no labelled target split: we validate on the
# labelled source val split, and `test` writes predictions for test.csv
# (format_only). If you hold labelled target frames, write them as
# val_target.csv (id,img_path,gt_path) and use `target_val_dataset`.
dataset_type = 'SamsungCameraDADataset'
data_root = 'data/samsung_camera'
num_classes = 12
img_scale = (1024, 540)  # (w, h): fits 2048x1024 and 1920x1080 at 1/2
crop_size = (512, 512)  # (h, w)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
target_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
unlabelled_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackSegInputs'),
]

# test-time augmentation (tools/test.py --tta, tools/predict.py --tta), as
# mmseg's configs: the test scale times each ratio, unflipped and flipped;
# SegTTAModel (default_runtime.py) averages the views' softmax at the
# original size. Mirrors the test pipeline of test.csv (unlabelled).
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
            [dict(type='PackSegInputs')],
        ])
]

source_train_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='train_source.csv',
    pipeline=train_pipeline)
target_train_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='train_target.csv',
    pipeline=target_train_pipeline)
source_val_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='val_source.csv',
    test_mode=True,
    pipeline=test_pipeline)
target_val_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='val_target.csv',
    test_mode=True,
    pipeline=test_pipeline)
test_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='test.csv',
    test_mode=True,
    pipeline=unlabelled_test_pipeline)

train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=source_train_dataset)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=source_val_dataset)
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=test_dataset)
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
# predictions as label PNGs under work_dirs/format_results (no labels)
test_evaluator = dict(
    type='IoUMetric',
    iou_metrics=['mIoU'],
    format_only=True,
    output_dir='work_dirs/format_results')
