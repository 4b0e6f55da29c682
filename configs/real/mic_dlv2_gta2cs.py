# MIC on DeepLabV2 (Hoyer et al., CVPR 2023, Table 1: MIC with DAFormer's
# self-training on the DeepLabV2 / ResNet-101 baseline), GTA5 -> Cityscapes:
# the MIC recipe of configs/real/mic_gta2cs.py (EMA teacher 0.999, ClassMix,
# ImageNet feature distance on thing classes, RCS, 512x512 crops, 32 px
# blocks 70 % masked, AdamW 6e-5 with 10x head lr) with the student swapped
# for DeepLabV2.
#   tools/dist_train.sh configs/real/mic_dlv2_gta2cs.py 1
_base_ = ['./mic_gta2cs.py', '../_base_/models/deeplabv2red_r101.py']
model = dict(segmentor=_base_.dlv2_segmentor)
