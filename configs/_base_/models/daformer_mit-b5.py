# DAFormer as published: MiT-B5 encoder (ImageNet-pretrained, mmseg's
# weights) + DAFormer head with 256 channels and a depthwise-separable ASPP
# fusion (dilations 1/6/12/18). Set num_classes in the config using it.
# SyncBN for several GPUs: model.segmentor.decode_head.norm_cfg.type='SyncBN'
# (not on CPU/gloo).
_base_ = ['./daformer_mit-b0.py']
checkpoint = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/'
              'segformer/mit_b5_20220624-658746d9.pth')
model = dict(
    backbone=dict(
        embed_dims=64,
        num_heads=[1, 2, 5, 8],
        num_layers=[3, 6, 40, 3],
        init_cfg=dict(_delete_=True, type='Pretrained',
                      checkpoint=checkpoint)),
    decode_head=dict(
        in_channels=[64, 128, 320, 512], channels=256, embed_dims=256))
