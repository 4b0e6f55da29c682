# The 2023 Samsung camera-invariant challenge recipe on the real data: MIC on
# DAFormer (MiT-B5, ImageNet weights) + the supervised distortion branch,
# pinhole source -> fisheye target, 512x512 crops at half resolution, i.e.
# configs/real/daformer_samsung.py plus MIC and the distortion branch (the
# demo configs/mic_dual_aug.py is this recipe scaled down).
#   data/samsung_camera/ in the challenge layout (see docs/demo_data.md)
#   tools/dist_train.sh configs/real/mic_dual_aug_samsung.py 1
#   python tools/test.py configs/real/mic_dual_aug_samsung.py CKPT
#       (writes test.csv predictions as PNGs to work_dirs/format_results)
# Per-domain normalisation (the 2023 solution measured the fisheye images'
# mean/std separately): set model.data_preprocessor.target_mean/target_std.
_base_ = ['./daformer_samsung.py']
model = dict(
    mask_lambda=1.0,        # MIC: 32 px blocks at 512^2, 70 % masked
    dual_branch_lambda=1.0)  # distortion view loss
