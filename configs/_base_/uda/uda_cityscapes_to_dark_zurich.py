# UDA data Cityscapes -> Dark Zurich, as DAFormer / MIC: labelled Cityscapes
# crops (rare class sampling) paired with unlabelled Dark Zurich night crops;
# validation on Dark Zurich val. The papers report Dark Zurich *test* (its
# server): predict on test_dataloader = _base_.dark_zurich_test_dataset.
_base_ = ['./uda_gta_to_cityscapes.py', '../datasets/dark_zurich.py']
train_dataloader = dict(
    dataset=dict(
        source=dict(_delete_=True, **_base_.cityscapes_source_dataset),
        target=dict(_delete_=True, **_base_.dark_zurich_target_dataset)))
val_dataloader = dict(
    dataset=dict(_delete_=True, **_base_.dark_zurich_val_dataset))
test_dataloader = val_dataloader
