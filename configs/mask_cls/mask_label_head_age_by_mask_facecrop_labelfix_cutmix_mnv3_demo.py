# + CutMix (mmpretrain's batch augment, half of the batches): the head mixes
# every group's one-hot target with the same lambda and trains on the soft
# targets (docs/classification.md, "CutMix / MixUp").
_base_ = ['./mask_label_head_age_by_mask_facecrop_labelfix_mnv3_demo.py']

model = dict(
    data_preprocessor=dict(
        batch_augments=dict(
            augments=[dict(type='CutMix', alpha=1.0)], probs=[0.5])))
