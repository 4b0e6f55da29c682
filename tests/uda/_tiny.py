"""Tiny UDA model/batch builders shared by the UDA tests."""
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

NUM_CLASSES = 5


def student_cfg(num_classes=NUM_CLASSES, head='SegformerHead'):
    norm = dict(type='BN', requires_grad=True)
    head_cfg = dict(
        type=head, in_channels=[8, 16, 24, 32], in_index=[0, 1, 2, 3],
        channels=16, dropout_ratio=0.1, num_classes=num_classes,
        norm_cfg=norm, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0))
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               pad_val=0, seg_pad_val=255, size=(32, 64)),
        backbone=dict(type='MixVisionTransformer', in_channels=3,
                      embed_dims=8, num_stages=4, num_layers=[1, 1, 1, 1],
                      num_heads=[1, 2, 3, 4], patch_sizes=[7, 3, 3, 3],
                      sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3),
                      mlp_ratio=2, qkv_bias=True, drop_rate=0.0,
                      attn_drop_rate=0.0, drop_path_rate=0.1),
        decode_head=head_cfg,
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def _sample(h, w, label=None):
    ds = SegDataSample()
    ds.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
    if label is not None:
        ds.gt_sem_seg = PixelData(data=label[None])
    return ds


def uda_batch(n=2, h=32, w=64, dist=True, target=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = dict(inputs=[], data_samples=[])
    if dist:
        batch.update(dist_inputs=[], dist_data_samples=[])
    if target:
        batch.update(target_inputs=[], target_data_samples=[])
    for _ in range(n):
        lbl = torch.randint(0, NUM_CLASSES, (h // 8, w // 8), generator=g)
        lbl = lbl.repeat_interleave(8, 0).repeat_interleave(8, 1)
        img = (lbl[None].float() * 40 + torch.rand(3, h, w, generator=g) * 30
               ).clamp(0, 255).to(torch.uint8)
        batch['inputs'].append(img)
        batch['data_samples'].append(_sample(h, w, lbl))
        if dist:
            batch['dist_inputs'].append(img.flip(-1))
            batch['dist_data_samples'].append(_sample(h, w, lbl.flip(-1)))
        if target:
            batch['target_inputs'].append((255 - img))
            batch['target_data_samples'].append(_sample(h, w))
    return batch
