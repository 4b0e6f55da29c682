# Mask-conditioned age: three age sub-heads, one per mask state (the teams'
# mask-status-specific age models). Training reads the sub-head of the
# ground-truth mask; at test the sub-head of the predicted mask
# ('predicted') or the mask-probability-weighted mixture ('mixture').
_base_ = ['./mask_label_head_mnv3_demo.py']

model = dict(
    head=dict(conditioned=dict(age='mask'), condition_test='predicted'))
