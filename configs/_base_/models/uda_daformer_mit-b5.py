# The published DAFormer / MIC UDA model: UDASegmentor around DAFormer on
# MiT-B5 (ImageNet weights), EMA teacher alpha 0.999, DACS ClassMix + strong
# augmentation, ImageNet feature distance, 512x512 crops. Configs using it
# set num_classes (model.segmentor.decode_head), the feature-distance
# classes, the MIC / dual-branch toggles and the UDA optimizer constructor.
_base_ = ['./daformer_mit-b5.py']
uda_crop_size = (512, 512)
model = dict(
    _delete_=True,
    type='UDASegmentor',
    segmentor=_base_.model,
    data_preprocessor=dict(
        type='UDADataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=uda_crop_size),
    alpha=0.999,
    pseudo_threshold=0.968,
    mix='class',
    color_jitter_strength=0.2,
    # a threshold as in the reference: jitter when U(0,1) > 0.2 (80 % of
    # the batches)
    color_jitter_probability=0.2,
    blur=True,
    imnet_feature_dist_lambda=0.005,
    imnet_feature_dist_scale_min_ratio=0.75,
    mask_lambda=0.0,
    mask_block_size=32,
    mask_ratio=0.7,
    dual_branch_lambda=0.0,
    eval_model='student',
    vis_interval=1000)
# (configs using it also set optim_wrapper=dict(
#  constructor='UDAOptimWrapperConstructor') next to their schedule base)
