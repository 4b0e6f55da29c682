"""DAFormer decode head: context-aware multi-level feature fusion.

Semantics of DAFormer (Hoyer et al., CVPR 2022, ``lhoyer/DAFormer``): every
selected backbone level is embedded to ``embed_dims`` channels by a per-pixel
linear layer (the "MLP" of SegFormer; a 1x1 conv with bias here, the same
map), upsampled bilinearly to the first selected level (1/4 resolution for
MiT), concatenated, and fused by an ASPP over the *concatenated* features
(dilations 1/6/12/18, depthwise-separable 3x3 branches by default, no image
pooling) followed by a 3x3 bottleneck conv; then dropout + 1x1 classifier
(``BaseDecodeHead.cls_seg``). Unlike SegFormer's 1x1 fusion, the dilated
branches see context around each pixel, which is what helps UDA.
"""
from numbers import Number
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.sep_aspp_head import \
    DepthwiseSeparableASPPModule
from mmseg.models.utils import resize

from mmplugins.registry import register_module

from .isa_fusion import ISAFusion

#: DAFormer's fusion: sep-conv ASPP on the concatenated embeddings.
DEFAULT_FUSION_CFG = dict(sep=True, dilations=(1, 6, 12, 18), pool=False)


class ASPPFusion(nn.Module):
    """ASPP over one feature map followed by a 3x3 bottleneck.

    Args:
        in_channels (int): Channels of the (concatenated) input.
        channels (int): Channels of every branch and of the output.
        dilations (Sequence[int]): One branch per dilation; dilation 1 is a
            1x1 conv, the others 3x3 (depthwise-separable when ``sep``).
        sep (bool): Depthwise-separable 3x3 branches.
        pool (bool): Add an image-pooling branch (needs batch > 1 with BN in
            training).
        norm_cfg (dict, optional): Norm layer config.
        act_cfg (dict, optional): Activation config.
        align_corners (bool): For resizing the pooled branch.
    """

    def __init__(self, in_channels: int, channels: int,
                 dilations: Sequence[int], sep: bool, pool: bool,
                 norm_cfg: Optional[dict], act_cfg: Optional[dict],
                 align_corners: bool = False):
        super().__init__()
        self.align_corners = align_corners
        self.image_pool = None
        if pool:
            self.image_pool = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                ConvModule(in_channels, channels, 1, norm_cfg=norm_cfg,
                           act_cfg=act_cfg))
        aspp = DepthwiseSeparableASPPModule if sep else ASPPModule
        self.aspp_modules = aspp(
            dilations=tuple(dilations),
            in_channels=in_channels,
            channels=channels,
            conv_cfg=None,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.bottleneck = ConvModule(
            (len(dilations) + int(pool)) * channels,
            channels,
            3,
            padding=1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        if self.image_pool is not None:
            outs.append(
                resize(self.image_pool(x), size=x.shape[2:], mode='bilinear',
                       align_corners=self.align_corners))
        outs.extend(self.aspp_modules(x))
        return self.bottleneck(torch.cat(outs, dim=1))


#: fusion_cfg types DAFormerHead builds itself (the reference's names)
FUSION_TYPES = ('aspp', 'conv', 'isa')
#: decoder_params.embed_cfg types it builds
EMBED_TYPES = ('mlp', )
#: embed_neck_cfg (the last level's embedding) types it builds
EMBED_NECK_TYPES = ('mlp', 'rawconv_and_aspp')
_ISA_KEYS = {'type', 'isa_channels', 'down_factor', 'key_query_num_convs',
             'in_conv_kernel_size', 'out_cat_and_conv', 'norm_cfg',
             'act_cfg'}
_NECK_KEYS = {'type', 'kernel_size', 'sep', 'dilations', 'pool', 'norm_cfg',
              'act_cfg'}


@register_module('models', toolboxes=('mmseg', ))
class DAFormerHead(BaseDecodeHead):
    """DAFormer decode head (multi-level embedding + ASPP context fusion).

    Works with any multi-level backbone, e.g. mmseg ``MixVisionTransformer``
    (MiT-B0: ``in_channels=[32, 64, 160, 256]``; MiT-B1..B5:
    ``[64, 128, 320, 512]``) with ``in_index=[0, 1, 2, 3]``.

    Args:
        in_channels (Sequence[int]): Channels of the selected levels.
        channels (int): Channels of the fused feature (the ASPP branches and
            the bottleneck), input of the classifier. DAFormer: 256.
        embed_dims (int | Sequence[int]): Per-level embedding channels.
            Defaults to 256.
        fusion_cfg (dict): ASPP fusion (``type='aspp'``, the default):
            ``sep`` (bool, depthwise-separable 3x3 branches), ``dilations``
            (positive ints), ``pool`` (bool, image-pooling branch); or a
            plain conv (``type='conv'``, ``kernel_size``) as DAFormer's
            ``conv`` fusion that HRDA's scale-attention head uses; or one
            interlaced sparse self-attention layer (``type='isa'``,
            ``isa_channels``, ``down_factor`` (8, 8),
            ``key_query_num_convs`` 2, ``in_conv_kernel_size`` 1,
            ``out_cat_and_conv`` False; see :class:`ISAFusion`), DAFormer's
            ISA ablation. All take optional ``norm_cfg`` / ``act_cfg``
            (default: the head's).
            Defaults to ``dict(sep=True, dilations=(1, 6, 12, 18),
            pool=False)``.
        embed_neck_cfg (dict, optional): The last level's embedding: None
            or ``type='mlp'`` (the linear layer of the other levels), or
            ``type='rawconv_and_aspp'`` (DAFormer's "bottleneck" ablation:
            a plain ``kernel_size`` conv to ``embed_dims`` then an ASPP of
            ``sep`` / ``dilations`` / ``pool`` with a 3x3 bottleneck, as
            :class:`ASPPFusion`; ``norm_cfg`` / ``act_cfg`` default to the
            head's). Defaults to None.
        decoder_params (dict, optional): The original DAFormer config block
            (``embed_dims``, ``embed_cfg`` of type ``'mlp'``,
            ``embed_neck_cfg`` as above or ``'same_as_embed_cfg'``,
            ``fusion_cfg`` of a type above), accepted so that DAFormer
            configs port unchanged; overrides ``embed_dims``,
            ``embed_neck_cfg`` and ``fusion_cfg``. Defaults to None.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``,
            ``in_index``, ``dropout_ratio``, ``norm_cfg``, ``act_cfg``,
            ``align_corners``, ``loss_decode``, ...). ``input_transform`` is
            always ``'multiple_select'``.

    Note:
        DAFormer's configs use ``norm_cfg=dict(type='BN', requires_grad=True)``
        (``SyncBN`` in multi-GPU), ``act_cfg=dict(type='ReLU')`` and
        ``align_corners=False``.
    """

    #: config key paths whose ``type`` this head interprets (read by the
    #: config pre-flight, mmplugins.utils.config_check)
    NESTED_TYPES = {
        'fusion_cfg': FUSION_TYPES,
        'decoder_params.fusion_cfg': FUSION_TYPES,
        'decoder_params.embed_cfg': EMBED_TYPES,
        'decoder_params.embed_neck_cfg': EMBED_NECK_TYPES,
        'embed_neck_cfg': EMBED_NECK_TYPES,
    }

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 256,
                 embed_dims: Union[int, Sequence[int]] = 256,
                 fusion_cfg: dict = DEFAULT_FUSION_CFG,
                 embed_neck_cfg: Optional[dict] = None,
                 decoder_params: Optional[dict] = None,
                 **kwargs):
        if 'input_transform' in kwargs and \
                kwargs['input_transform'] != 'multiple_select':
            raise ValueError('DAFormerHead fuses several levels: '
                             "input_transform must be 'multiple_select', but "
                             f"got {kwargs['input_transform']!r}")
        kwargs.pop('input_transform', None)
        if not (isinstance(in_channels, (list, tuple)) and in_channels and
                all(isinstance(c, int) and c > 0 for c in in_channels)):
            raise ValueError('DAFormerHead: in_channels must be a non-empty '
                             'list of positive ints (one per level), but got '
                             f'in_channels={in_channels!r}')
        in_index = kwargs.setdefault('in_index',
                                     list(range(len(in_channels))))
        if not (isinstance(in_index, (list, tuple))
                and len(in_index) == len(in_channels)):
            raise ValueError('DAFormerHead: in_index must be a list as long '
                             f'as in_channels={list(in_channels)}, but got '
                             f'in_index={in_index!r}')
        if decoder_params is not None:
            embed_dims, fusion_cfg, embed_neck_cfg = \
                self._from_decoder_params(decoder_params, embed_dims,
                                          fusion_cfg, embed_neck_cfg)
        super().__init__(in_channels, channels,
                         input_transform='multiple_select', **kwargs)

        if isinstance(embed_dims, int):
            embed_dims = [embed_dims] * len(in_channels)
        if (not isinstance(embed_dims, (list, tuple))
                or len(embed_dims) != len(in_channels)
                or not all(isinstance(d, int) and d > 0
                           for d in embed_dims)):
            raise ValueError('DAFormerHead: embed_dims must be a positive int '
                             'or one positive int per level '
                             f'({len(in_channels)}), but got '
                             f'embed_dims={embed_dims!r}')
        self.embed_dims = list(embed_dims)
        self.fusion_cfg = self._check_fusion_cfg(fusion_cfg)
        self.embed_neck_cfg = self._check_neck_cfg(embed_neck_cfg)

        self.embed_layers = nn.ModuleList(
            nn.Conv2d(c, d, kernel_size=1)
            for c, d in zip(self.in_channels, self.embed_dims))
        neck = self.embed_neck_cfg
        if neck is not None:
            k, d = neck['kernel_size'], self.embed_dims[-1]
            self.embed_layers[-1] = nn.Sequential(
                nn.Conv2d(self.in_channels[-1], d, k, padding=k // 2),
                ASPPFusion(d, d, dilations=neck['dilations'],
                           sep=neck['sep'], pool=neck['pool'],
                           norm_cfg=neck.get('norm_cfg', self.norm_cfg),
                           act_cfg=neck.get('act_cfg', self.act_cfg),
                           align_corners=self.align_corners))
        norm_cfg = self.fusion_cfg.get('norm_cfg', self.norm_cfg)
        act_cfg = self.fusion_cfg.get('act_cfg', self.act_cfg)
        if self.fusion_cfg['type'] == 'isa':
            f = self.fusion_cfg
            self.fuse_layer = ISAFusion(
                sum(self.embed_dims), self.channels, f['isa_channels'],
                down_factor=tuple(f.get('down_factor', (8, 8))),
                key_query_num_convs=f.get('key_query_num_convs', 2),
                in_conv_kernel_size=f.get('in_conv_kernel_size', 1),
                out_cat_and_conv=f.get('out_cat_and_conv', False),
                norm_cfg=norm_cfg, act_cfg=act_cfg)
        elif self.fusion_cfg['type'] == 'conv':
            k = self.fusion_cfg['kernel_size']
            self.fuse_layer = ConvModule(
                sum(self.embed_dims), self.channels, k, padding=k // 2,
                norm_cfg=norm_cfg, act_cfg=act_cfg)
        else:
            self.fuse_layer = ASPPFusion(
                sum(self.embed_dims),
                self.channels,
                dilations=self.fusion_cfg['dilations'],
                sep=self.fusion_cfg['sep'],
                pool=self.fusion_cfg['pool'],
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                align_corners=self.align_corners)

    @staticmethod
    def _from_decoder_params(params: dict, embed_dims, fusion_cfg,
                             embed_neck_cfg):
        params = dict(params)
        for key, types in (('embed_cfg', EMBED_TYPES),
                           ('embed_neck_cfg', EMBED_NECK_TYPES)):
            cfg = params.get(key)
            if cfg == 'same_as_embed_cfg' or cfg is None:
                continue
            if cfg.get('type') not in types:
                raise ValueError(f'DAFormerHead: decoder_params.{key} type '
                                 f'must be one of {list(types)}, but '
                                 f"got {cfg.get('type')!r}")
        neck = params.get('embed_neck_cfg', embed_neck_cfg)
        if neck == 'same_as_embed_cfg':
            neck = None
        fusion = dict(params.get('fusion_cfg', fusion_cfg))
        return params.get('embed_dims', embed_dims), fusion, neck

    @staticmethod
    def _check_neck_cfg(cfg: Optional[dict]) -> Optional[dict]:
        """None for the plain linear embedding, else the checked
        'rawconv_and_aspp' dict."""
        if cfg is None or (isinstance(cfg, dict) and
                           cfg.get('type') == 'mlp'):
            return None
        if not isinstance(cfg, dict) or \
                cfg.get('type') not in EMBED_NECK_TYPES:
            raise ValueError('DAFormerHead: embed_neck_cfg type must be one '
                             f'of {list(EMBED_NECK_TYPES)}, but got '
                             f'embed_neck_cfg={cfg!r}')
        unknown = set(cfg) - _NECK_KEYS
        k = cfg.get('kernel_size', 1)
        if unknown or not (isinstance(k, int) and k >= 1 and k % 2):
            raise ValueError(
                "DAFormerHead: embed_neck_cfg of type 'rawconv_and_aspp' "
                f'takes {sorted(_NECK_KEYS)} with an odd kernel_size, but '
                f'got embed_neck_cfg={cfg!r}')
        aspp = DAFormerHead._check_fusion_cfg(
            {k2: v for k2, v in cfg.items() if k2 not in ('type',
                                                        'kernel_size')})
        return dict(aspp, type='rawconv_and_aspp', kernel_size=k)

    @staticmethod
    def _check_fusion_cfg(cfg: dict) -> dict:
        if not isinstance(cfg, dict):
            raise ValueError('DAFormerHead: fusion_cfg must be a dict, but '
                             f'got fusion_cfg={cfg!r}')
        ftype = cfg.get('type', 'aspp')
        if ftype == 'conv':
            cfg = dict(cfg)
            unknown = set(cfg) - {'type', 'kernel_size', 'norm_cfg',
                                  'act_cfg'}
            k = cfg.setdefault('kernel_size', 1)
            if unknown or not (isinstance(k, int) and k >= 1 and k % 2):
                raise ValueError(
                    "DAFormerHead: fusion_cfg of type 'conv' takes an odd "
                    'kernel_size >= 1 and optional norm_cfg/act_cfg, but got '
                    f'fusion_cfg={cfg!r}')
            return cfg
        if ftype == 'isa':
            cfg = dict(cfg)
            unknown = set(cfg) - _ISA_KEYS
            c = cfg.get('isa_channels')
            if unknown or not (isinstance(c, int) and c > 0):
                raise ValueError(
                    "DAFormerHead: fusion_cfg of type 'isa' takes "
                    f'{sorted(_ISA_KEYS)} with a positive int isa_channels,'
                    f' but got fusion_cfg={cfg!r}')
            return cfg
        if ftype not in FUSION_TYPES:
            raise ValueError('DAFormerHead: fusion_cfg type must be one of '
                             f'{list(FUSION_TYPES)}, but got {ftype!r}')
        cfg = dict(DEFAULT_FUSION_CFG, **cfg)
        cfg['type'] = 'aspp'
        unknown = set(cfg) - {'type', 'sep', 'dilations', 'pool', 'norm_cfg',
                              'act_cfg'}
        if unknown:
            raise ValueError(f'DAFormerHead: unknown fusion_cfg keys '
                             f'{sorted(unknown)} in fusion_cfg={cfg!r}')
        dilations = cfg['dilations']
        if not (isinstance(dilations, (list, tuple)) and dilations and all(
                isinstance(d, Number) and int(d) == d and d >= 1
                for d in dilations)):
            raise ValueError('DAFormerHead: fusion_cfg dilations must be a '
                             'non-empty sequence of ints >= 1, but got '
                             f'dilations={dilations!r}')
        cfg['dilations'] = tuple(int(d) for d in dilations)
        cfg['sep'] = bool(cfg['sep'])
        cfg['pool'] = bool(cfg['pool'])
        return cfg

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Multi-level features -> logits at the first selected level."""
        feats = self._transform_inputs(inputs)
        size = feats[0].shape[2:]
        embeds = []
        for feat, embed in zip(feats, self.embed_layers):
            out = embed(feat)
            if out.shape[2:] != size:
                out = resize(out, size=size, mode='bilinear',
                             align_corners=self.align_corners)
            embeds.append(out)
        return self.cls_seg(self.fuse_layer(torch.cat(embeds, dim=1)))
