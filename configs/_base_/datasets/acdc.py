# ACDC (adverse conditions: fog, night, rain, snow; 1920x1080 frames) as the
# UDA target of Cityscapes -> ACDC. Flatten the downloaded per-condition
# folders once, as the reference's README:
#   python tools/dataset_converters/acdc.py data/acdc
# As DAFormer: resize to 960x540, random 512x512 crops; validation on the
# labelled val split, the papers' numbers on the test split (labels on
# ACDC's evaluation server only: acdc_test_dataset has none).
acdc_root = 'data/acdc'
acdc_scale = (960, 540)  # (w, h)
acdc_crop_size = (512, 512)
acdc_target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=acdc_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=acdc_crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
acdc_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=acdc_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
acdc_target_dataset = dict(
    type='ACDCDataset',
    data_root=acdc_root,
    data_prefix=dict(img_path='rgb_anon/train'),
    pipeline=acdc_target_pipeline)
acdc_val_dataset = dict(
    type='ACDCDataset',
    data_root=acdc_root,
    data_prefix=dict(img_path='rgb_anon/val', seg_map_path='gt/val'),
    test_mode=True,
    pipeline=acdc_test_pipeline)
acdc_test_dataset = dict(
    type='ACDCDataset',
    data_root=acdc_root,
    data_prefix=dict(img_path='rgb_anon/test'),
    test_mode=True,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=acdc_scale, keep_ratio=True),
        dict(type='PackSegInputs'),
    ])
