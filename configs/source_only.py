# Source-only baseline: SegFormer MiT-B0 trained on the labelled pinhole
# source of the Samsung demo and validated on the fisheye TARGET val split.
# The gap between this and the UDA configs is what the tricks buy.
#   python tools/train.py configs/source_only.py
_base_ = [
    './_base_/models/segformer_mit-b0.py',
    './_base_/datasets/samsung_demo.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_2k.py',
]
crop_size = (128, 256)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor, decode_head=dict(num_classes=12))
