# MIC(HRDA) (Hoyer et al., CVPR 2023), Cityscapes -> Dark Zurich (night):
# MIC's main-table row (exp 80 of its experiments.py). The ACDC recipe
# (mic_hrda_cs2acdc.py: Cityscapes 2048x1024 source, target at 1920x1080,
# 1024x1024 crops, no margins, MIC on one source and one target image) with
# Dark Zurich's night frames as the target and its val set (mmseg's
# DarkZurichDataset). The paper's numbers are Dark Zurich *test* (its server):
#   python tools/predict.py configs/real/mic_hrda_cs2darkzurich.py CKPT \
#       --img-dir data/dark_zurich/rgb_anon/test/night --out dz_test \
#       --format trainids
_base_ = ['./mic_hrda_cs2acdc.py']
train_dataloader = dict(
    dataset=dict(
        target=dict(
            type='DarkZurichDataset',
            data_root='data/dark_zurich',
            data_prefix=dict(img_path='rgb_anon/train/night'))))
val_dataloader = dict(
    dataset=dict(
        type='DarkZurichDataset',
        data_root='data/dark_zurich',
        data_prefix=dict(img_path='rgb_anon/val', seg_map_path='gt/val')))
test_dataloader = val_dataloader
