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
    '../_base_/models/uda_daformer_mit-b5.py',
    '../_base_/uda/uda_samsung_camera.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
model = dict(
    segmentor=dict(decode_head=dict(num_classes=12)),
    # Traffic Light, Traffic Sign, Person, Rider, Car
    imnet_feature_dist_classes=[5, 6, 9, 10, 11],
    mask_lambda=1.0,        # MIC: 32 px blocks at 512^2, 70 % masked
    dual_branch_lambda=1.0)  # distortion view loss
# the optimizer gets the student only (not the EMA teacher / frozen copy)
optim_wrapper = dict(constructor='UDAOptimWrapperConstructor')
