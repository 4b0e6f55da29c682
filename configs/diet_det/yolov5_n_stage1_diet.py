# YOLOv5 diet recipe, stage 1 at demo scale (1st place, 2021 driver-
# inattention detection): YOLOv5-n from scratch on the rule-based diet
# subset, each epoch a random 1/epoch_parts of it, with mosaic partners drawn
# from the diet too (SubsetMixDataset). configs/real/yolov5_l6_stage1_diet.py
# is the full-size recipe (YOLOv5-l6, epoch_parts=15, 300 epochs).
#   python tools/make_det_demo_data.py --out data/driver_demo
#   python tools/train.py configs/diet_det/yolov5_n_stage1_diet.py
# then yolov5_n_stage2_finetune.py fine-tunes on the full distribution.
_base_ = './yolov5_n_full_data.py'

train_dataloader = dict(
    # mosaic's three partners come from the sampler's pool (the diet), as in
    # the reference where the diet was the training set itself
    dataset=dict(
        _delete_=True,
        type='SubsetMixDataset',
        partners='subset',
        dataset=_base_.train_dataloader.dataset),
    sampler=dict(
        _delete_=True,
        type='DietSampler',
        # the reference rule set; the first rule an image matches decides
        rules=[
            dict(any_of=['cigar', 'phone']),                  # 1 keep
            dict(all_of=['eye_closed', 'mouth_closed']),      # 2 keep
            dict(all_of=['eye_closed', 'mouth_opened']),      # 3 keep
            dict(any_of=['mouth_opened'], keep_every=3),      # 4 every 3rd
        ],
        default_keep=False,                                   # 5 drop rest
        # the reference: 15; the demo's ~190-image diet gets 2, i.e. 95
        # images (12 iterations of 8) per epoch
        epoch_parts=2,
        # the reference's single-GPU sampler: RandomSampler(replacement=True,
        # num_samples=len // epoch_parts)
        replacement=True))

max_epochs = 40
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
default_hooks = dict(
    param_scheduler=dict(max_epochs=max_epochs),
    checkpoint=dict(interval=10))
