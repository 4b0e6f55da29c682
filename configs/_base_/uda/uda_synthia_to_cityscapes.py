# UDA data SYNTHIA -> Cityscapes, as DAFormer / MIC: labelled SYNTHIA crops
# (rare class sampling with DAFormer's settings) paired with unlabelled
# Cityscapes crops; validation on Cityscapes val with the 19-class mIoU and
# the papers' mIoU16 / mIoU13.
#   python tools/dataset_converters/synthia.py data/synthia   (once)
_base_ = ['./uda_gta_to_cityscapes.py', '../datasets/synthia.py']
train_dataloader = dict(
    dataset=dict(source=dict(_delete_=True, **_base_.synthia_train_dataset)))
val_evaluator = dict(type='SubsetIoUMetric', iou_metrics=['mIoU'],
                     subsets='synthia')
test_evaluator = val_evaluator
