# SYNTHIA-RAND-CITYSCAPES (synthetic, 9,400 labelled 1280x760 frames) as the
# UDA source for Cityscapes. Convert its labels once (writes
# GT/LABELS/*_labelTrainIds.png and the class statistics for RCS):
#   python tools/dataset_converters/synthia.py data/synthia
# As DAFormer: resize to 1280x760, random 512x512 crops. Evaluate with
# SubsetIoUMetric(subsets='synthia') for the papers' mIoU16 / mIoU13.
synthia_root = 'data/synthia'
synthia_scale = (1280, 760)  # (w, h)
synthia_crop_size = (512, 512)
synthia_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=19),
    dict(type='Resize', scale=synthia_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=synthia_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
synthia_train_dataset = dict(
    type='SynthiaDataset',
    data_root=synthia_root,
    data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'),
    pipeline=synthia_train_pipeline)
