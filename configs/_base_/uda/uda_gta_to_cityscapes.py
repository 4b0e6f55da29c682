# UDA data GTA5 -> Cityscapes, as DAFormer / MIC: labelled GTA crops (rare
# class sampling with DAFormer's settings) paired with unlabelled Cityscapes
# crops; validation on Cityscapes val.
#   python tools/dataset_converters/gta.py data/gta        (once)
# Cityscapes: mmseg's tools/dataset_converters/cityscapes.py (train ids).
_base_ = ['../datasets/gta.py', '../datasets/cityscapes_half.py']
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=_base_.gta_train_dataset,
        target=_base_.cityscapes_target_dataset,
        rare_class_sampling=dict(
            class_temp=0.01, min_pixels=3000, min_crop_ratio=0.5)))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_base_.cityscapes_val_dataset)
test_dataloader = val_dataloader
# mmseg's inference_model reads the top-level test_pipeline; --tta this
test_pipeline = _base_.cityscapes_test_pipeline
tta_pipeline = _base_.cityscapes_tta_pipeline
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)
