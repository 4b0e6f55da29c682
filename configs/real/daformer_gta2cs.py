# DAFormer (Hoyer et al., CVPR 2022) on GTA5 -> Cityscapes, as published:
# MiT-B5 (ImageNet weights) + DAFormer head, DACS self-training with an EMA
# teacher (alpha 0.999), rare class sampling, ImageNet feature distance on
# the thing classes, 40k iterations of batch 2 at 512x512.
#   python tools/dataset_converters/gta.py data/gta
#   tools/dist_train.sh configs/real/daformer_gta2cs.py 1     (or N GPUs)
_base_ = [
    '../_base_/models/daformer_mit-b5.py',
    '../_base_/uda/uda_gta_to_cityscapes.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
crop_size = (512, 512)
model = dict(
    _delete_=True,
    type='UDASegmentor',
    segmentor=dict(_base_.model, decode_head=dict(
        _base_.model.decode_head, num_classes=19)),
    data_preprocessor=dict(
        type='UDADataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    alpha=0.999,
    pseudo_threshold=0.968,
    # Cityscapes frames: ignore the top rows and the ego-vehicle hood
    pseudo_weight_ignore_top=15,
    pseudo_weight_ignore_bottom=120,
    mix='class',
    color_jitter_strength=0.2,
    color_jitter_probability=0.8,
    blur=True,
    imnet_feature_dist_lambda=0.005,
    # DAFormer's thing classes (Cityscapes train ids): traffic light, traffic
    # sign, person, rider, car, truck, bus, train, motorcycle, bicycle
    imnet_feature_dist_classes=[6, 7, 11, 12, 13, 14, 15, 16, 17, 18],
    imnet_feature_dist_scale_min_ratio=0.75,
    mask_lambda=0.0,
    dual_branch_lambda=0.0,
    eval_model='student',
    vis_interval=1000)
optim_wrapper = dict(constructor='UDAOptimWrapperConstructor')
