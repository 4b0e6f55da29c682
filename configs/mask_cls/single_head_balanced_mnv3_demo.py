# 18-way head + class-balanced sampling of the joint code.
_base_ = ['./single_head_mnv3_demo.py']

train_dataloader = dict(
    sampler=dict(
        _delete_=True, type='ClassBalancedSampler', label_key='gt_label'))
