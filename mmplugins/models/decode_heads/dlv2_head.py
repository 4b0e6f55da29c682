"""DeepLabV2 decode head as the UDA papers use it.

Semantics of ``DLV2Head`` in ``lhoyer/DAFormer`` (and HRDA / MIC): one
backbone level (ResNet's last, 2048 channels, output stride 8 with the
dilated ResNet-V1c of ``deeplabv2_r50-d8``) goes through one 3x3 conv per
dilation rate straight to ``num_classes`` channels (bias on, no norm, no
activation), and the logits are the **sum** of these branches. There is no
bottleneck, no dropout and no separate 1x1 classifier: the branches are the
classifier. The reference's ``deeplabv2red`` config keeps the dilations
(6, 12) only, as earlier UDA works did (their DeepLabV2 returned inside the
loop over the rates); the full DeepLabV2 uses (6, 12, 18, 24).
"""
from typing import Sequence

import torch
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from mmplugins.registry import register_module

#: the reference configs' init: N(0, 0.01) weights, zero bias, on the
#: branches (they are the classifier)
DLV2_INIT_CFG = dict(type='Normal', std=0.01,
                     override=dict(name='aspp_modules'))


@register_module('models', toolboxes=('mmseg', ))
class DLV2Head(BaseDecodeHead):
    """DeepLabV2 head: sum of dilated 3x3 convs to the class logits.

    Example (DeepLabV2 on ResNet-101, as the papers' ``dlv2red``)::

        decode_head=dict(type='DLV2Head', in_channels=2048, in_index=3,
                         dilations=(6, 12), num_classes=19,
                         align_corners=False)

    Args:
        in_channels (int): Channels of the selected backbone level.
        dilations (Sequence[int]): One 3x3 branch per rate (a rate of 1 is
            a 1x1 conv, as mmseg's ``ASPPModule``). Defaults to
            ``(6, 12, 18, 24)``.
        init_cfg (dict | list): Defaults to ``Normal(std=0.01)`` on the
            branches (``override=dict(name='aspp_modules')``), the
            reference configs' value.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``,
            ``in_index``, ``align_corners``, ``loss_decode``, ...).

    Note:
        ``channels``, ``dropout_ratio`` and ``norm_cfg`` are fixed by the
        design (no hidden layer, no dropout, no norm) and are rejected, as
        the reference asserts. The head's output stride is the backbone
        level's: 8 on the dilated ResNet-V1c (``strides=(1, 2, 1, 1)``).
    """

    def __init__(self,
                 in_channels: int,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 init_cfg=DLV2_INIT_CFG,
                 **kwargs):
        for key in ('channels', 'dropout_ratio', 'norm_cfg'):
            if key in kwargs:
                raise ValueError(
                    f'DLV2Head: {key} is fixed by the design (the branches '
                    'are the classifier: no hidden channels, dropout or '
                    f'norm), but got {key}={kwargs[key]!r}')
        if not (isinstance(dilations, (list, tuple)) and dilations and all(
                isinstance(d, int) and d >= 1 for d in dilations)):
            raise ValueError('DLV2Head: dilations must be a non-empty list '
                             'of ints >= 1, but got '
                             f'dilations={dilations!r}')
        if not isinstance(in_channels, int):
            raise ValueError('DLV2Head reads one backbone level: in_channels '
                             f'must be an int, but got {in_channels!r}')
        super().__init__(in_channels, channels=1, dropout_ratio=0,
                         norm_cfg=None, init_cfg=init_cfg, **kwargs)
        del self.conv_seg
        self.dilations = tuple(dilations)
        self.aspp_modules = ASPPModule(
            self.dilations, self.in_channels, self.out_channels,
            conv_cfg=self.conv_cfg, norm_cfg=None, act_cfg=None)

    def forward(self, inputs) -> torch.Tensor:
        """Backbone levels -> logits (sum of the dilated branches)."""
        x = self._transform_inputs(inputs)
        outs = self.aspp_modules(x)
        out = outs[0]
        for o in outs[1:]:
            out = out + o
        return out
