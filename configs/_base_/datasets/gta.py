# GTA5 (synthetic, 24,966 labelled 1914x1052 frames) as the UDA source for
# Cityscapes. Convert its labels once:
#   python tools/dataset_converters/gta.py data/gta
# (writes labels/*_labelTrainIds.png). As DAFormer: resize to 1280x720,
# random 512x512 crops.
gta_root = 'data/gta'
gta_scale = (1280, 720)  # (w, h)
gta_crop_size = (512, 512)
gta_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=19),
    dict(type='Resize', scale=gta_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=gta_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
gta_train_dataset = dict(
    type='GTADataset',
    data_root=gta_root,
    data_prefix=dict(img_path='images', seg_map_path='labels'),
    pipeline=gta_train_pipeline)
