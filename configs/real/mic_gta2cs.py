# MIC (Hoyer et al., CVPR 2023) on DAFormer, GTA5 -> Cityscapes: the DAFormer
# recipe plus masked image consistency (32 px blocks at 512x512 crops, 70 %
# masked, weight 1).
#   tools/dist_train.sh configs/real/mic_gta2cs.py 1
_base_ = ['./daformer_gta2cs.py']
model = dict(mask_lambda=1.0, mask_block_size=32, mask_ratio=0.7)
