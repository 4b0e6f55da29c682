# MIC(HRDA) (Hoyer et al., CVPR 2023 on HRDA, ECCV 2022) on the demo's
# pinhole -> fisheye shift, with the camera-distortion dual branch:
#   python tools/train.py configs/mic_hrda.py
# configs/mic_dual_aug.py with the student made multi-resolution. The real
# recipe (1024x1024 crops, 512x512 detail crops at full resolution, context
# at 0.5, MIC blocks of 64) is configs/real/mic_hrda_gta2cs.py; here it is
# scaled to the demo's 512x256 frames on a CPU: the whole frame is the
# training crop (256x512), the context is its half (128x256 -- the pixels
# the MIC demo trains on), the detail crop 128x128 at full resolution.
_base_ = ['./mic_dual_aug.py', './_base_/models/hrda.py']

crop_size = (256, 512)      # (h, w): the whole demo frame
model = dict(
    # the reference's HRDA (scales [1, 0.5], crop corners divisible by 8,
    # class-wise attention, detail loss 0.1, FD on the context) ...
    segmentor=dict(
        _base_.hrda_segmentor,
        # ... with a 128x128 detail crop (reference: 512 in 1024) ...
        hr_crop_size=(128, 128),
        decode_head=dict(
            _base_.hrda_segmentor.decode_head,
            # ... an attention head as wide as the demo's 64-channel
            # DAFormer head (reference: 256 next to 256) ...
            attention_embed_dim=64),
        # ... and whole-image test: a demo frame is one training crop
        test_cfg=dict(mode='whole')),
    data_preprocessor=dict(size=crop_size),
    # MIC blocks scale with the crop: 16 at 128x256, 32 here (reference: 32
    # at 512x512, 64 at HRDA's 1024x1024)
    mask_block_size=32)


def _with_crop(pipeline):
    return [dict(t, crop_size=crop_size) if t['type'] == 'RandomCrop' else t
            for t in pipeline]


train_dataloader = dict(
    dataset=dict(
        source=dict(pipeline=_with_crop(_base_.source_uda_pipeline)),
        target=dict(pipeline=_with_crop(_base_.target_train_pipeline)),
        # HRDA trains on 4x the pixels per crop: RCS's minimum crop share
        # x4 (reference: 0.5 -> 2.0)
        rare_class_sampling=dict(min_crop_ratio=2.0)))
