"""SegFormer adapter neck of DAFormer's decoder ablation (``sfa_``).

DAFormer ran single-level decoders built for dilated ResNets (DeepLabV3+)
on MiT by this neck: the last level is replaced with the concatenation of
the levels ``out_layers``, each bilinearly resized by its factor in
``scales`` (default: MiT's last level, 1/32, upsampled x4 to 1/8, the
output stride of a dilated ResNet). The other levels pass unchanged (the
DeepLabV3+ head reads level 0 as its low-level input).
"""
from typing import List, Sequence

import torch
from mmengine.model import BaseModule
from mmseg.models.utils import resize

from mmplugins.registry import register_module


@register_module('models', toolboxes=('mmseg', ))
class SegFormerAdapter(BaseModule):
    """Concatenate resized levels into the last one.

    Args:
        out_layers (Sequence[int]): Levels concatenated (in this order).
            Defaults to ``[3]``.
        scales (Sequence[float]): Resize factor of each (1: unchanged).
            Defaults to ``[4]``.

    Note:
        The decode head reading the last level sees the sum of the chosen
        levels' channels (512 for MiT-B5's last level alone): set its
        ``in_channels`` accordingly, as the reference's experiments do.
    """

    def __init__(self, out_layers: Sequence[int] = (3, ),
                 scales: Sequence[float] = (4, ), init_cfg=None):
        super().__init__(init_cfg)
        if not (isinstance(out_layers, (list, tuple)) and out_layers and
                isinstance(scales, (list, tuple)) and
                len(scales) == len(out_layers) and
                all(isinstance(s, (int, float)) and s > 0 for s in scales)):
            raise ValueError('SegFormerAdapter: out_layers and scales must '
                             'be equally long non-empty lists (scales > 0), '
                             f'but got out_layers={out_layers!r}, '
                             f'scales={scales!r}')
        self.out_layers = list(out_layers)
        self.scales = list(scales)

    def forward(self, x: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        parts = []
        for i, s in zip(self.out_layers, self.scales):
            parts.append(x[i] if s == 1 else resize(
                x[i], scale_factor=s, mode='bilinear', align_corners=False))
        out = list(x)
        out[-1] = torch.cat(parts, dim=1)
        return out
