# HRDA (Hoyer et al., ECCV 2022) on DAFormer, GTA5 -> Cityscapes, as
# published: 1024x1024 crops of the full-resolution frames; the context is
# the whole crop at half resolution, the detail a 512x512 crop at full
# resolution, fused by a learned class-wise scale attention; pseudo-labels
# from overlapping detail crops; test by 1024x1024 windows with stride 512.
#   tools/dist_train.sh configs/real/hrda_gta2cs.py 1
# (~22 GB of GPU memory in the reference on a TITAN RTX, batch 2)
_base_ = ['./daformer_gta2cs.py', '../_base_/models/hrda.py']
crop_size = (1024, 1024)
model = dict(
    # scales [1, 0.5], 512x512 detail crops, class-wise attention, detail
    # loss 0.1, FD on the context, 1024/512 batched test windows
    segmentor=_base_.hrda_segmentor,
    data_preprocessor=dict(size=crop_size),
    # HRDA masks the pseudo-label margins in the data loader instead (see
    # the target dataset below)
    pseudo_weight_ignore_top=0,
    pseudo_weight_ignore_bottom=0)

# ---- data: full-resolution frames, 1024x1024 crops -------------------------
gta_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=19),
    dict(type='Resize', scale=(2560, 1440), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
cityscapes_target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
cityscapes_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# inference_model reads test_pipeline; TTA at the full-resolution test scale
test_pipeline = cityscapes_test_pipeline
cityscapes_scale = (2048, 1024)
cityscapes_tta_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize',
                     scale=(int(cityscapes_scale[0] * r), int(cityscapes_scale[1] * r)),
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
train_dataloader = dict(
    num_workers=1,
    dataset=dict(
        source=dict(pipeline=gta_train_pipeline),
        target=dict(
            pipeline=cityscapes_target_pipeline,
            # pseudo-label margins v2: masked on the full frame before
            # resize / crop / flip, i.e. only where a crop touches them
            crop_pseudo_margins=[30, 240, 30, 30]),
        # 4x the pixels per crop: min_crop_ratio 0.5 -> 2.0
        rare_class_sampling=dict(
            class_temp=0.01, min_pixels=3000, min_crop_ratio=2.0)))
val_dataloader = dict(dataset=dict(pipeline=cityscapes_test_pipeline))
test_dataloader = val_dataloader
