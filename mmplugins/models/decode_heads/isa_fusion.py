"""Interlaced sparse self-attention (ISA) as a fusion layer.

DAFormer's decoder ablation ``fusion_cfg=dict(type='isa', ...)`` fuses the
concatenated multi-level embeddings with one ISA layer (Huang et al.,
"Interlaced Sparse Self-Attention", 2019) instead of the ASPP: a 1x1
ConvModule to ``channels``, then self-attention among pixels that are
``down_factor`` apart (*global* relation: one group per position inside a
``down_factor`` cell) followed by self-attention inside each cell (*local*
relation). Sizes that do not divide ``down_factor`` are zero-padded
symmetrically (the extra row/column at the end) and cropped back.
The attention blocks are mmseg's ISA blocks (``isa_head.SelfAttentionBlock``),
with ``key_query_num_convs`` key/query convs as the reference's layer takes.
"""
import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.isa_head import SelfAttentionBlock


def _isa_block(channels: int, isa_channels: int, key_query_num_convs: int,
               norm_cfg, act_cfg) -> SelfAttentionBlock:
    block = SelfAttentionBlock(channels, isa_channels, conv_cfg=None,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)
    if key_query_num_convs != 2:  # mmseg's block fixes 2
        for name in ('key_project', 'query_project'):
            setattr(block, name, block.build_project(
                channels, isa_channels, num_convs=key_query_num_convs,
                use_conv_module=True, conv_cfg=None, norm_cfg=norm_cfg,
                act_cfg=act_cfg))
    return block


class ISAFusion(nn.Module):
    """One ISA layer: ``in_conv`` then global and local relations.

    Args:
        in_channels (int): Input channels.
        channels (int): Channels of the in_conv output and of the result.
        isa_channels (int): Key/query channels of the attention blocks.
        down_factor (Sequence[int]): (h, w) of the local cells. (8, 8).
        key_query_num_convs (int): Convs of the key and query projections
            (the reference layer's default 2; DAFormer's ISA ablation: 1).
        in_conv_kernel_size (int, optional): Kernel of the input
            ConvModule (1); None: no input conv (``in_channels`` must then
            equal ``channels``).
        out_cat_and_conv (bool): Concatenate the in_conv output and the
            attention result and fuse them with a 1x1 ConvModule. False.
        norm_cfg, act_cfg: Of every ConvModule.
    """

    def __init__(self, in_channels: int, channels: int, isa_channels: int,
                 down_factor: Sequence[int] = (8, 8),
                 key_query_num_convs: int = 2,
                 in_conv_kernel_size: Optional[int] = 1,
                 out_cat_and_conv: bool = False,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU')):
        super().__init__()
        if not (isinstance(down_factor, (list, tuple)) and
                len(down_factor) == 2 and
                all(isinstance(v, int) and v >= 1 for v in down_factor)):
            raise ValueError('ISAFusion: down_factor must be (h, w) ints '
                             f'>= 1, but got down_factor={down_factor!r}')
        if in_conv_kernel_size is None and in_channels != channels:
            raise ValueError('ISAFusion: without in_conv, in_channels must '
                             f'equal channels, but got {in_channels} != '
                             f'{channels}')
        self.down_factor = tuple(down_factor)
        self.in_conv = None if in_conv_kernel_size is None else ConvModule(
            in_channels, channels, in_conv_kernel_size,
            padding=in_conv_kernel_size // 2, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.global_relation = _isa_block(channels, isa_channels,
                                          key_query_num_convs, norm_cfg,
                                          act_cfg)
        self.local_relation = _isa_block(channels, isa_channels,
                                         key_query_num_convs, norm_cfg,
                                         act_cfg)
        self.out_conv = ConvModule(
            2 * channels, channels, 1, norm_cfg=norm_cfg,
            act_cfg=act_cfg) if out_cat_and_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_conv is not None:
            x = self.in_conv(x)
        identity = x
        n, c, h, w = x.shape
        ch, cw = self.down_factor
        gh, gw = math.ceil(h / ch), math.ceil(w / cw)
        ph, pw = gh * ch - h, gw * cw - w
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        # x[n, c, gy * ch + cy, gx * cw + cx] -> 6-d (n, c, gy, cy, gx, cx)
        x = x.view(n, c, gh, ch, gw, cw)
        # global: attention over (gy, gx) for each in-cell offset (cy, cx)
        g = x.permute(0, 3, 5, 1, 2, 4).reshape(n * ch * cw, c, gh, gw)
        g = self.global_relation(g).view(n, ch, cw, c, gh, gw)
        # local: attention over (cy, cx) inside each cell (gy, gx)
        loc = g.permute(0, 4, 5, 3, 1, 2).reshape(n * gh * gw, c, ch, cw)
        loc = self.local_relation(loc).view(n, gh, gw, c, ch, cw)
        x = loc.permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * ch, gw * cw)
        if ph or pw:
            x = x[:, :, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        if self.out_conv is not None:
            x = self.out_conv(torch.cat([x, identity], dim=1))
        return x
