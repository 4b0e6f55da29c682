# MIC (Hoyer et al., CVPR 2023) on DAFormer + the camera-distortion dual
# branch of the 2023 Samsung camera-invariant challenge:
#   EMA teacher + DACS class-mix + RCS + masked image consistency
#   + a supervised Affine/Elastic distortion view of every source crop.
#   python tools/train.py configs/mic_dual_aug.py
#   tools/dist_train.sh configs/mic_dual_aug.py 2
# Ablations are one line each, e.g.
#   --cfg-options model.mask_lambda=0            (no MIC)
#   --cfg-options model.dual_branch_lambda=0     (no distortion branch)
#   --cfg-options model.mix=None model.mask_lambda=0 model.dual_branch_lambda=0
#                                                (source-only, same model)
# Real data: configs/real/mic_dual_aug_samsung.py (the challenge folder has
# the demo's layout; MiT-B5 with ImageNet weights, 512x512 crops, 40k
# iterations) and configs/real/mic_gta2cs.py (GTA5 -> Cityscapes).
_base_ = ['./daformer_uda.py']
model = dict(
    # the demo trains from scratch: no ImageNet features to preserve
    imnet_feature_dist_lambda=0.0,
    mask_lambda=1.0,        # MIC
    mask_block_size=16,     # 32 at 512^2 crops; the demo crops are 128x256
    mask_ratio=0.7,
    dual_branch_lambda=1.0)  # distortion view loss
