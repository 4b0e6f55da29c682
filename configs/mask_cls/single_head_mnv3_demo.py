# Baseline: one 18-way softmax on a timm backbone, mask demo data.
#   python tools/make_mask_demo_data.py --out data/mask_demo
#   python tools/train.py configs/mask_cls/single_head_mnv3_demo.py
# Any timm model works by name: --cfg-options model.backbone.model_name=resnet18
# With internet, model.backbone.pretrained=True loads timm's ImageNet weights.
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/datasets/mask_demo.py',
]
custom_imports = dict(imports=['mmplugins'], allow_failed_imports=False)
default_scope = 'mmpretrain'

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=18,
        mean=[127.5, 127.5, 127.5],
        std=[64., 64., 64.],
        to_rgb=True),
    backbone=dict(
        type='TIMMBackbone',
        model_name='mobilenetv3_small_050',
        pretrained=False,  # no download here; True with internet
        # the last stage's feature map (288 channels here, 512 for
        # resnet18: set the head's in_channels when changing model_name)
        features_only=True,
        out_indices=(-1, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=18,
        in_channels=288,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, T_max=12),
]
train_cfg = dict(by_epoch=True, max_epochs=12, val_interval=3)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook',
        interval=3,
        max_keep_ckpts=1,
        save_best='mask/joint_f1',
        rule='greater'))
custom_hooks = [
    dict(type='ConfusionMatrixHook', num_classes=18),
]
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
randomness = dict(seed=0)
