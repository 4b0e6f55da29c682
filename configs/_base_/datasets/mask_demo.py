# Mask-wearing demo data (tools/make_mask_demo_data.py), person-wise fold 0
# of 5. For the real competition data set data_root to the folder holding
# `images/` (the competition's `train/`) and adapt the resize.
dataset_type = 'MaskDataset'
data_root = 'data/mask_demo'
num_folds = 5
fold = 0

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='PackInputs'),
]
# `tools/test.py --tta`: average the scores of the image and its mirror
tta_model = dict(type='AverageClsScoreTTA')
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    # mmcv's TestTimeAug is not re-registered by mmpretrain: name its scope
    dict(
        type='mmcv.TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0.),
            dict(type='RandomFlip', prob=1., direction='horizontal'),
        ], [dict(type='PackInputs')]]),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        num_folds=num_folds,
        fold=fold,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        num_folds=num_folds,
        fold=fold,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='MaskF1Metric')
test_evaluator = val_evaluator
