# UDA data Cityscapes -> ACDC, as DAFormer / MIC: labelled Cityscapes crops
# (rare class sampling) paired with unlabelled ACDC crops of the four
# conditions; validation on ACDC val. The papers report ACDC *test* (its
# server): predict on test_dataloader = _base_.acdc_test_dataset.
#   python tools/dataset_converters/acdc.py data/acdc   (once)
_base_ = ['./uda_gta_to_cityscapes.py', '../datasets/acdc.py']
train_dataloader = dict(
    dataset=dict(
        source=dict(_delete_=True, **_base_.cityscapes_source_dataset),
        target=dict(_delete_=True, **_base_.acdc_target_dataset)))
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.acdc_val_dataset))
test_dataloader = val_dataloader
