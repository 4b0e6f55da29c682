# SegFormer MiT-B0 (mmseg's EncoderDecoder + MixVisionTransformer +
# SegformerHead) for the 12 Samsung challenge classes, from scratch:
# no pretrained weights can be downloaded here (backbone init_cfg=None).
# BN instead of mmseg's SyncBN: SyncBN has no CPU kernel, so CPU (gloo) DDP
# would fail; on several GPUs set model.decode_head.norm_cfg.type='SyncBN'.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=32,
        num_stages=4,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        init_cfg=None),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[32, 64, 160, 256],
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=12,
        norm_cfg=norm_cfg,
        align_corners=False,
        # no init_cfg: BaseDecodeHead's default Normal(std=0.01, bias 0) on
        # conv_seg, as in mmseg's SegFormer
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
