# MIC(HRDA) + the distortion branch on the real 2023 Samsung camera-invariant
# challenge data (pinhole source -> fisheye target): the challenge recipe
# (configs/real/mic_dual_aug_samsung.py) with HRDA's multi-resolution
# student, as configs/real/mic_hrda_gta2cs.py does for GTA5 -> Cityscapes:
# 1024x1024 crops of the full-resolution frames, a 512x512 detail crop at
# full resolution, the context at half, MIC blocks of 64.
#   tools/dist_train.sh configs/real/mic_hrda_dual_aug_samsung.py 1
_base_ = ['./mic_dual_aug_samsung.py', '../_base_/models/hrda.py']
crop_size = (1024, 1024)
img_scale = (2048, 1080)  # (w, h): the frames' full resolution
model = dict(
    segmentor=_base_.hrda_segmentor,  # the reference's HRDA settings
    data_preprocessor=dict(size=crop_size),
    mask_block_size=64)  # 32 at 512x512, 64 at 1024x1024 (MIC)


def _full_res(pipeline):
    """The base pipeline at full resolution with 1024x1024 crops; the
    distortion warp scaled with the crop side (displacement ~ alpha /
    sigma, smoothness ~ sigma)."""
    out = []
    for t in pipeline:
        if t['type'] == 'Resize':
            t = dict(t, scale=img_scale)
        elif t['type'] == 'RandomCrop':
            t = dict(t, crop_size=crop_size)
        elif t['type'] == 'DualBranchAug':
            t = dict(t, elastic=dict(t['elastic'],
                                     alpha=t['elastic']['alpha'] * 2,
                                     sigma=t['elastic']['sigma'] * 2))
        out.append(t)
    return out


train_dataloader = dict(
    num_workers=4,
    dataset=dict(
        source=dict(pipeline=_full_res(_base_.source_uda_pipeline)),
        target=dict(pipeline=_full_res(_base_.target_train_pipeline)),
        # 4x the pixels per crop: min_crop_ratio 0.5 -> 2.0 (HRDA)
        rare_class_sampling=dict(min_crop_ratio=2.0)))
val_dataloader = dict(
    dataset=dict(pipeline=_full_res(_base_.test_pipeline)))
test_dataloader = dict(
    dataset=dict(pipeline=_full_res(_base_.unlabelled_test_pipeline)))
# inference_model reads test_pipeline: the full-resolution one; TTA at the
# full-resolution test scale (unlabelled test.csv)
test_pipeline = _full_res(_base_.test_pipeline)
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
