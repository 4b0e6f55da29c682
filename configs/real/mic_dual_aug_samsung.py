# The 2023 Samsung camera-invariant challenge recipe on the real data: MIC on
# DAFormer (MiT-B5, ImageNet weights) + the supervised distortion branch,
# pinhole source -> fisheye target, 512x512 crops at half resolution.
#   data/samsung_camera/ in the challenge layout (see docs/demo_data.md)
#   tools/dist_train.sh configs/real/mic_dual_aug_samsung.py 1
#   python tools/test.py configs/real/mic_dual_aug_samsung.py CKPT
#       (writes test.csv predictions as PNGs to work_dirs/format_results)
# Per-domain normalisation (the 2023 solution measured the fisheye images'
# mean/std separately): set model.data_preprocessor.target_mean/target_std.
_base_ = [
    '../_base_/models/daformer_mit-b5.py',
    '../_base_/uda/uda_samsung_camera.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
crop_size = (512, 512)
model = dict(
    _delete_=True,
    type='UDASegmentor',
    segmentor=dict(_base_.model, decode_head=dict(
        _base_.model.decode_head, num_classes=12)),
    data_preprocessor=dict(
        type='UDADataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    alpha=0.999,
    pseudo_threshold=0.968,
    mix='class',
    color_jitter_strength=0.2,
    color_jitter_probability=0.8,
    blur=True,
    imnet_feature_dist_lambda=0.005,
    # Traffic Light, Traffic Sign, Person, Rider, Car
    imnet_feature_dist_classes=[5, 6, 9, 10, 11],
    imnet_feature_dist_scale_min_ratio=0.75,
    mask_lambda=1.0,
    mask_block_size=32,
    mask_ratio=0.7,
    dual_branch_lambda=1.0,
    eval_model='student',
    vis_interval=1000)
optim_wrapper = dict(constructor='UDAOptimWrapperConstructor')
