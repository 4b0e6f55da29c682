# MIC(HRDA) (Hoyer et al., CVPR 2023), Cityscapes -> ACDC (fog, night, rain,
# snow): MIC's main-table row (exp 80 of its experiments.py).
# mic_hrda_gta2cs.py with labelled Cityscapes at 2048x1024 as the source and
# unlabelled ACDC rgb_anon at 1920x1080 as the target, 1024x1024 crops, no
# pseudo-label margins (ACDC frames are not rectified), and MIC on one source
# and one target image (mask_mode='separate'). Validation on ACDC val; the
# paper's numbers are ACDC *test*, scored by its server:
#   python tools/dataset_converters/acdc.py data/acdc   (once)
#   tools/dist_train.sh configs/real/mic_hrda_cs2acdc.py 1
#   python tools/predict.py configs/real/mic_hrda_cs2acdc.py CKPT \
#       --img-dir data/acdc/rgb_anon/test --out acdc_test --format trainids
_base_ = ['./mic_hrda_gta2cs.py']
model = dict(mask_mode='separate')
acdc_scale = (1920, 1080)
cityscapes_hr_source_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=19),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(1024, 1024), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
target_hr_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=acdc_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=(1024, 1024)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=acdc_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize',
                     scale=(int(acdc_scale[0] * r), int(acdc_scale[1] * r)),
                     keep_ratio=True)
                for r in [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(
    dataset=dict(
        source=dict(
            _delete_=True,
            type='CityscapesDataset',
            data_root='data/cityscapes',
            data_prefix=dict(
                img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=cityscapes_hr_source_pipeline),
        target=dict(
            _delete_=True,
            type='ACDCDataset',
            data_root='data/acdc',
            data_prefix=dict(img_path='rgb_anon/train'),
            pipeline=target_hr_pipeline)))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ACDCDataset',
        data_root='data/acdc',
        data_prefix=dict(img_path='rgb_anon/val', seg_map_path='gt/val'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
