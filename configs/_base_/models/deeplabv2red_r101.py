# DeepLabV2 as the UDA papers run it (DAFormer / HRDA / MIC's ``dlv2red``
# with ``r101v1c``): ResNet-101 V1c, dilated (output stride 8: strides
# 1/2/1/1, dilations 1/1/2/4), ImageNet weights from open-mmlab, and the
# DeepLabV2 head -- the sum of dilated 3x3 convs straight to the classes,
# with the dilations 6 and 12 only, as earlier UDA works used it. A config
# that inherits this next to a DAFormer UDA recipe swaps the student with
#   model = dict(segmentor=dlv2_segmentor)
# (GTA5 / Cityscapes: 19 classes; set decode_head.num_classes otherwise).
dlv2_segmentor = dict(
    _delete_=True,
    type='EncoderDecoder',
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://resnet101_v1c')),
    decode_head=dict(
        type='DLV2Head',
        in_channels=2048,
        in_index=3,
        dilations=(6, 12),
        num_classes=19,
        align_corners=False,
        # the reference's init: N(0, 0.01) on the branches (the default)
        init_cfg=dict(type='Normal', std=0.01,
                      override=dict(name='aspp_modules')),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
