# Multi-label mask head: mask (3) / gender (2) / age (3) sub-heads on a
# shared neck instead of one 18-way softmax; same data, backbone, schedule.
_base_ = ['./single_head_mnv3_demo.py']

model = dict(
    head=dict(
        _delete_=True,
        type='MaskLabelHead',
        in_channels=288,
        hidden_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
