# Cityscapes (mmseg's stock CityscapesDataset, labels prepared with mmseg's
# tools/dataset_converters/cityscapes.py) at half resolution, as DAFormer's
# UDA target: train images unlabelled, resized to 1024x512, 512x512 crops;
# validation on the labelled val split at 1024x512.
cityscapes_root = 'data/cityscapes'
cityscapes_scale = (1024, 512)  # (w, h)
cityscapes_crop_size = (512, 512)
cityscapes_target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=cityscapes_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=cityscapes_crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
cityscapes_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=cityscapes_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# test-time augmentation (tools/test.py --tta, tools/predict.py --tta), as
# mmseg's configs: the test scale times each ratio, unflipped and flipped;
# SegTTAModel (default_runtime.py) averages the views' softmax at the
# original size. Mirrors the test pipeline (Cityscapes val, labelled).
cityscapes_tta_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
cityscapes_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize',
                     scale=(int(cityscapes_scale[0] * r),
                            int(cityscapes_scale[1] * r)),
                     keep_ratio=True) for r in cityscapes_tta_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]

cityscapes_target_dataset = dict(
    type='CityscapesDataset',
    data_root=cityscapes_root,
    data_prefix=dict(img_path='leftImg8bit/train'),
    pipeline=cityscapes_target_pipeline)
cityscapes_val_dataset = dict(
    type='CityscapesDataset',
    data_root=cityscapes_root,
    data_prefix=dict(img_path='leftImg8bit/val',
                     seg_map_path='gtFine/val'),
    test_mode=True,
    pipeline=cityscapes_test_pipeline)
# Cityscapes as the labelled UDA *source* (Cityscapes -> ACDC / Dark Zurich),
# as DAFormer: 1024x512, random 512x512 crops with cat_max_ratio 0.75.
cityscapes_source_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=19),
    dict(type='Resize', scale=cityscapes_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=cityscapes_crop_size,
         cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
cityscapes_source_dataset = dict(
    type='CityscapesDataset',
    data_root=cityscapes_root,
    data_prefix=dict(img_path='leftImg8bit/train',
                     seg_map_path='gtFine/train'),
    pipeline=cityscapes_source_pipeline)
