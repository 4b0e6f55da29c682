# The competition recipe on the multi-label head: focal + soft-F1 on the rare
# age group, label smoothing on mask and gender, age balanced by the sampler,
# AdamP and gradient accumulation (effective batch 2 x 32). AMP on a GPU:
# mask_label_head_recipe_amp_mnv3_demo.py (or `tools/train.py --amp`).
_base_ = ['./mask_label_head_mnv3_demo.py']

model = dict(
    head=dict(
        group_losses=dict(
            mask=dict(type='LabelSmoothingLoss', smoothing=0.1),
            gender=dict(type='LabelSmoothingLoss', smoothing=0.1),
            age=[
                dict(type='SoftmaxFocalLoss', gamma=2.0),
                dict(type='SoftF1Loss', loss_weight=0.5),
            ]),
        group_loss_weights=dict(mask=1.0, gender=1.0, age=1.5)))

train_dataloader = dict(
    sampler=dict(
        _delete_=True, type='ClassBalancedSampler', label_key='age_label'))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    accumulative_counts=2,
    optimizer=dict(type='AdamP', lr=3e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=5.0))
