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
# This is configs/real/mic_dual_aug_samsung.py (the challenge recipe: MiT-B5
# with ImageNet weights, 512x512 crops, 40k iterations) scaled down to the
# demo. Text configs inherit along one chain, so the scale-downs are written
# once, in configs/daformer_uda.py (the demo of configs/real/
# daformer_samsung.py), and this file adds what mic_dual_aug_samsung.py adds
# to daformer_samsung.py (MIC + distortion branch) plus the two scale-downs
# that only matter with them. tests/configs/test_reference_recipe.py checks
# that the result is the real recipe with exactly the scale-downs changed.
# Other real data: configs/real/mic_gta2cs.py (GTA5 -> Cityscapes).
_base_ = ['./daformer_uda.py']
model = dict(
    # as configs/real/mic_dual_aug_samsung.py
    mask_lambda=1.0,        # MIC
    dual_branch_lambda=1.0,  # distortion view loss
    # scale-downs: the demo trains from scratch, so there are no ImageNet
    # features to preserve; MIC's 32 px blocks are for 512^2 crops, the
    # demo crops are 128x256
    imnet_feature_dist_lambda=0.0,
    mask_block_size=16)
