# Multi-label mask head + class-balanced sampling of the joint 18-way code
# (weights 1 / frequency, as WeightedRandomSampler in the seed teams' code).
_base_ = ['./mask_label_head_mnv3_demo.py']

train_dataloader = dict(
    sampler=dict(
        _delete_=True, type='ClassBalancedSampler', label_key='gt_label'))
