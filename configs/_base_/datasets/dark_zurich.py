# Dark Zurich (night driving, 1920x1080 frames; mmseg 1.x's own
# DarkZurichDataset) as the UDA target of Cityscapes -> Dark Zurich: the
# train archive's night images (unlabelled), the val archive's labelled
# night images; no preparation (sequence sub-folders are found recursively).
# As DAFormer: resize to 960x540, random 512x512 crops. The papers' numbers
# are on the test split (Dark_Zurich_test_anon, labels on the evaluation
# server only: dark_zurich_test_dataset has none).
dark_zurich_root = 'data/dark_zurich'
dark_zurich_scale = (960, 540)  # (w, h)
dark_zurich_crop_size = (512, 512)
dark_zurich_target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=dark_zurich_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=dark_zurich_crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
dark_zurich_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=dark_zurich_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dark_zurich_target_dataset = dict(
    type='DarkZurichDataset',
    data_root=dark_zurich_root,
    data_prefix=dict(img_path='rgb_anon/train/night'),
    pipeline=dark_zurich_target_pipeline)
dark_zurich_val_dataset = dict(
    type='DarkZurichDataset',
    data_root=dark_zurich_root,
    data_prefix=dict(img_path='rgb_anon/val', seg_map_path='gt/val'),
    test_mode=True,
    pipeline=dark_zurich_test_pipeline)
dark_zurich_test_dataset = dict(
    type='DarkZurichDataset',
    data_root=dark_zurich_root,
    data_prefix=dict(img_path='rgb_anon/test'),
    test_mode=True,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=dark_zurich_scale, keep_ratio=True),
        dict(type='PackSegInputs'),
    ])
