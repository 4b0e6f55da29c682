# DAFormer (Hoyer et al., CVPR 2022) on GTA5 -> Cityscapes, as published:
# MiT-B5 (ImageNet weights) + DAFormer head, DACS self-training with an EMA
# teacher (alpha 0.999), rare class sampling, ImageNet feature distance on
# the thing classes, 40k iterations of batch 2 at 512x512.
#   python tools/dataset_converters/gta.py data/gta
#   tools/dist_train.sh configs/real/daformer_gta2cs.py 1     (or N GPUs)
_base_ = [
    '../_base_/models/uda_daformer_mit-b5.py',
    '../_base_/uda/uda_gta_to_cityscapes.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
model = dict(
    segmentor=dict(decode_head=dict(num_classes=19)),
    # Cityscapes frames: ignore the top rows and the ego-vehicle hood
    pseudo_weight_ignore_top=15,
    pseudo_weight_ignore_bottom=120,
    # DAFormer's thing classes (Cityscapes train ids): traffic light, traffic
    # sign, person, rider, car, truck, bus, train, motorcycle, bicycle
    imnet_feature_dist_classes=[6, 7, 11, 12, 13, 14, 15, 16, 17, 18])
# the optimizer gets the student only (not the EMA teacher / frozen copy)
optim_wrapper = dict(constructor='UDAOptimWrapperConstructor')
