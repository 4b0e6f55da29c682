# UDA data for the real 2023 Samsung camera-invariant challenge: labelled
# pinhole source (+ its Affine/Elastic distortion view) paired with the
# unlabelled fisheye target, 512x512 crops at half resolution. The release
# has no labelled target split, so validation uses the source val split;
# with labelled target frames (val_target.csv) switch val_dataloader.dataset
# to `target_val_dataset` of the dataset config.
_base_ = ['../datasets/samsung_camera.py']
data_root = _base_.data_root
source_uda_pipeline = _base_.train_pipeline[:-1] + [
    # the 2023 solution's distortion branch; the demo's warp scaled to the
    # 4x larger crop side (displacement ~ alpha / sigma, smoothness ~ sigma)
    dict(
        type='DualBranchAug',
        affine=dict(scale=(0.85, 1.15), translate_percent=(-0.05, 0.05),
                    rotate=(-10, 10), shear=(-5, 5), p=1.0),
        elastic=dict(alpha=640, sigma=32, p=1.0),
        ellipse_prob=0.5,
        target_img_dir='train_target_image',
        data_root=data_root),
    dict(type='PackDualBranchSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='UDADataset',
        source=dict(_base_.source_train_dataset,
                    pipeline=source_uda_pipeline),
        target=_base_.target_train_dataset,
        # DAFormer's settings at 1024x512-sized source frames
        rare_class_sampling=dict(
            class_temp=0.01, min_pixels=3000, min_crop_ratio=0.5)))
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)
