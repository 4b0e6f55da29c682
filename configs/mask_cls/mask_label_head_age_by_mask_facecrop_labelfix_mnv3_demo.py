# + label fixes: the corrections CSV (person id -> gender / age, image ->
# mask state) applied before the folds; the same file for train and val so
# both see the same folds. Demo data with known mistakes and their CSV:
# python tools/make_mask_demo_data.py --out data/mask_demo_faces \
#     --faces detectable --face-scale 0.7 --mislabel-persons 15
_base_ = ['./mask_label_head_age_by_mask_facecrop_mnv3_demo.py']

label_fixes = 'data/mask_demo/label_fixes.csv'
train_dataloader = dict(dataset=dict(label_fixes=label_fixes))
val_dataloader = dict(dataset=dict(label_fixes=label_fixes))
test_dataloader = dict(dataset=dict(label_fixes=label_fixes))
