# + face crop (MTCNN from facenet-pytorch, margin 0.3, centre-crop fallback)
# in the train, val, test and TTA pipelines. The detector runs once per image:
# boxes are cached under work_dirs/face_crop_cache. The demo faces MTCNN
# finds: python tools/make_mask_demo_data.py --out data/mask_demo_faces \
#     --faces detectable --face-scale 0.7
_base_ = ['./mask_label_head_age_by_mask_mnv3_demo.py']

face_crop = dict(
    type='FaceCrop',
    margin=0.3,
    detector=dict(type='mtcnn', min_face_size=20),
    cache_dir='work_dirs/face_crop_cache',
    fallback_ratio=0.8)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    face_crop,
    dict(type='Resize', scale=(64, 64)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    face_crop,
    dict(type='Resize', scale=(64, 64)),
    dict(type='PackInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    face_crop,
    dict(type='Resize', scale=(64, 64)),
    dict(
        type='mmcv.TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0.),
            dict(type='RandomFlip', prob=1., direction='horizontal'),
        ], [dict(type='PackInputs')]]),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
