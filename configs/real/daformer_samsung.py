# DAFormer (Hoyer et al., CVPR 2022) on the real 2023 Samsung
# camera-invariant challenge data: MiT-B5 (ImageNet weights) + DAFormer head,
# DACS self-training with an EMA teacher (alpha 0.999), rare class sampling,
# ImageNet feature distance on the thing classes, 40k iterations of batch 2
# at 512x512 crops, pinhole source -> fisheye target at half resolution.
# configs/real/mic_dual_aug_samsung.py adds MIC and the distortion branch on
# top; configs/daformer_uda.py is this recipe scaled down to the demo.
#   data/samsung_camera/ in the challenge layout (see docs/demo_data.md)
#   tools/dist_train.sh configs/real/daformer_samsung.py 1
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
    mask_lambda=0.0,         # MIC off
    dual_branch_lambda=0.0)  # distortion branch off
# the optimizer gets the student only (not the EMA teacher / frozen copy)
optim_wrapper = dict(constructor='UDAOptimWrapperConstructor')
