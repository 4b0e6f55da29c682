# MIC(HRDA) (Hoyer et al., CVPR 2023), SYNTHIA -> Cityscapes: MIC's main-table
# row (exp 80 of its experiments.py). mic_hrda_gta2cs.py with SYNTHIA
# (RAND-CITYSCAPES) as the labelled source: full-resolution frames resized to
# 2560x1520, 1024x1024 crops; evaluated with the 19-class mIoU and the papers'
# mIoU16 / mIoU13 (SubsetIoUMetric).
#   python tools/dataset_converters/synthia.py data/synthia   (once)
#   tools/dist_train.sh configs/real/mic_hrda_synthia2cs.py 1
_base_ = ['./mic_hrda_gta2cs.py']
synthia_hr_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabel', num_classes=19),
    dict(type='Resize', scale=(2560, 1520), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(1024, 1024), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        source=dict(
            _delete_=True,
            type='SynthiaDataset',
            data_root='data/synthia',
            data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'),
            pipeline=synthia_hr_pipeline)))
val_evaluator = dict(type='SubsetIoUMetric', subsets='synthia')
test_evaluator = val_evaluator
