"""Reference ``model`` section (mmseg 0.x) -> ``model.segmentor`` keys:
the segmentor type, the MiT backbone, the DAFormer head and HRDA's
segmentor and head options. Key tables: :mod:`.tables`."""
from .base import SectionBase
from .tables import (BASE_HEAD_KEYS, HRDA_HEAD_COPIED, HRDA_OUTPUT_STRIDES,
                     HRDA_SEG_KEYS, MIT_HEADS, MIT_SIZES, MMSEG_HEADS,
                     RESNET_BACKBONES)


class ModelSection(SectionBase):
    """``_model`` and its helpers (mixed into the Converter)."""

    def _model(self, m):
        m = dict(m)
        seg = {}
        mtype = m.pop('type', 'EncoderDecoder')
        hrda = mtype == 'HRDAEncoderDecoder'
        if mtype not in ('EncoderDecoder', 'HRDAEncoderDecoder'):
            self._reject('model.type', mtype, 'only EncoderDecoder and '
                         'HRDAEncoderDecoder are converted')
            for k in HRDA_SEG_KEYS:
                if k in m:
                    self._reject(f'model.{k}', m.pop(k), 'HRDA option')
        seg['type'] = mtype if hrda else 'EncoderDecoder'
        pretrained = m.pop('pretrained', None)
        seg['backbone'] = self._backbone(m.pop('backbone', None), pretrained)
        if pretrained:
            self._map('model.pretrained',
                      'model.segmentor.backbone.init_cfg (Pretrained)')
        seg['decode_head'] = self._decode_head(m.pop('decode_head', None),
                                               hrda)
        if hrda:
            single = (seg['decode_head'] or {}).get('single_scale_head')
            seg.update(self._hrda_segmentor(
                m, HRDA_OUTPUT_STRIDES.get(single, 4)))
        if 'auxiliary_head' in m:
            self._reject('model.auxiliary_head', m.pop('auxiliary_head'),
                         'UDASegmentor trains the decode head only')
        if 'neck' in m:
            seg['neck'] = self._neck(m.pop('neck'))
        train_cfg = m.pop('train_cfg', None)
        seg['train_cfg'] = dict(train_cfg or {})
        test_cfg = dict(m.pop('test_cfg', None) or dict(mode='whole'))
        if test_cfg.pop('batched_slide', False):
            test_cfg['batch_size'] = None
            if hrda:  # HRDAEncoderDecoder is a BatchedSlideEncoderDecoder
                self._map('model.test_cfg.batched_slide=True',
                          'model.segmentor.test_cfg.batch_size=None')
            else:
                seg['type'] = 'BatchedSlideEncoderDecoder'
                self._map('model.test_cfg.batched_slide=True',
                          "model.segmentor.type='BatchedSlideEncoderDecoder'"
                          ', test_cfg.batch_size=None')
        for k in ('crop_size', 'stride'):
            if isinstance(test_cfg.get(k), list):
                test_cfg[k] = tuple(test_cfg[k])
        for k in list(test_cfg):
            if k not in ('mode', 'crop_size', 'stride', 'batch_size'):
                self._reject(f'model.test_cfg.{k}', test_cfg.pop(k))
        seg['test_cfg'] = test_cfg
        self._map('model.train_cfg/test_cfg',
                  'model.segmentor.train_cfg/test_cfg')
        self._leftover(m, 'model')
        return seg

    def _neck(self, n):
        """DAFormer's ``SegFormerAdapter`` (the ``sfa_`` ablation) -> the
        mmplugins neck of the same name and arguments."""
        n = dict(n or {})
        if n.get('type') != 'SegFormerAdapter':
            self._reject('model.neck', n,
                         "only DAFormer's SegFormerAdapter is converted")
            return dict(type=n.get('type'))
        ntype = n.pop('type')
        out = dict(type=ntype)
        for k in ('out_layers', 'scales'):
            if k in n:
                out[k] = n.pop(k)
        self._map("model.neck type='SegFormerAdapter'",
                  "model.segmentor.neck type='SegFormerAdapter'")
        self._leftover(n, 'model.neck')
        return out

    def _hrda_segmentor(self, m, output_stride=4):
        """HRDAEncoderDecoder's keys, checked as HRDAEncoderDecoder checks
        them (a value it rejects is unsupported). Reference defaults where
        a key is absent: scales=[1], hr_crop_size=None,
        crop_coord_divisible=1, feature_scale=1. ``output_stride``: the
        single-scale head's (DAFormer 4, DeepLabV2 8)."""
        out = {}
        scales = m.pop('scales', [1])
        try:
            ok = sorted(float(s) for s in scales)
            ok = len(ok) == 2 and ok[1] == 1 and 0 < ok[0] < 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            self._reject('model.scales', scales, 'HRDAEncoderDecoder needs '
                         '[1, s] with 0 < s < 1 (detail + context)')
            lr_scale = None
        else:
            out['scales'] = list(scales)
            lr_scale = min(float(s) for s in scales)
            self._map('model.scales', 'model.segmentor.scales')
        crop_hw = m.pop('hr_crop_size', None)
        if not (isinstance(crop_hw, (list, tuple)) and
                len(crop_hw) == 2 and all(
                    isinstance(v, int) and v > 0 for v in crop_hw)):
            self._reject('model.hr_crop_size', crop_hw,
                         'HRDAEncoderDecoder trains on a detail crop: '
                         '(h, w) positive ints are required')
            crop_hw = None
        else:
            out['hr_crop_size'] = tuple(crop_hw)
            self._map('model.hr_crop_size', 'model.segmentor.hr_crop_size')
        for k in ('hr_slide_inference', 'hr_slide_overlapping',
                  'blur_hr_crop'):
            if k in m:
                out[k] = bool(m.pop(k))
                self._map(f'model.{k}', f'model.segmentor.{k}')
        divisible = m.pop('crop_coord_divisible', 1)
        if lr_scale is not None:
            # crops must land on whole context output pixels
            step = output_stride / lr_scale
            whole = step == int(step) and (crop_hw is None or all(
                v % int(step) == 0 for v in crop_hw))
            aligned = whole and isinstance(divisible, int) and \
                divisible % int(step) == 0
            if aligned or (whole and isinstance(divisible, int)):
                out['crop_coord_divisible'] = divisible
                self._map('model.crop_coord_divisible',
                          'model.segmentor.crop_coord_divisible')
                if not aligned:
                    # the reference truncates the box to the context grid
                    out['allow_misaligned_crop'] = True
                    self._map(
                        f'model.crop_coord_divisible={divisible} (not a '
                        f'multiple of {output_stride} / {lr_scale:g})',
                        'model.segmentor.allow_misaligned_crop=True (crop '
                        'corners truncated to the context grid, as the '
                        'reference)')
            else:
                self._reject(
                    'model.crop_coord_divisible/hr_crop_size',
                    (divisible, crop_hw and tuple(crop_hw)),
                    'HRDAEncoderDecoder needs hr_crop_size a multiple of '
                    f'output stride / context scale = {output_stride} / '
                    f'{lr_scale:g}')
        fd_on = bool((self.ref.get('uda') or {}).get(
            'imnet_feature_dist_lambda', 0))
        if 'feature_scale' in m:
            fs = m.pop('feature_scale')
            if lr_scale is not None and not isinstance(fs, str) and \
                    fs == lr_scale:
                out['feature_scale'] = fs
                self._map('model.feature_scale',
                          'model.segmentor.feature_scale')
            else:
                self._reject('model.feature_scale', fs,
                             'HRDAEncoderDecoder computes the feature '
                             'distance on the context features only '
                             '(feature_scale = the context scale)')
        elif fd_on:
            self._reject('model.feature_scale (unset)', 1,
                         "the reference's default 1 (feature distance on "
                         'the detail crop): HRDAEncoderDecoder uses the '
                         'context scale only')
        else:
            self._ignore('model.feature_scale (unset)', 1,
                         "ignored (no effect: the reference's default, "
                         'feature distance off)')
        return out

    def _backbone(self, b, pretrained):
        if b is None:
            self._reject('model.backbone', None, 'a backbone is required')
            return None
        b = dict(b)
        btype = b.pop('type', None)
        if btype in RESNET_BACKBONES:
            return self._resnet_backbone(btype, b, pretrained)
        if btype not in MIT_SIZES:
            self._reject('model.backbone.type', btype,
                         'only MiT (mit_b0..mit_b5) and ResNet-family ('
                         f'{", ".join(RESNET_BACKBONES)}) backbones are '
                         'converted')
            self._leftover(b, 'model.backbone')
            return dict(type=btype)
        style = b.pop('style', None)
        if style is not None:
            self._ignore('model.backbone.style', style,
                         'ignored (no effect on MixVisionTransformer)')
        size = MIT_SIZES[btype]
        out = dict(
            type='MixVisionTransformer', in_channels=3,
            embed_dims=size['embed_dims'], num_stages=4,
            num_layers=list(size['num_layers']), num_heads=list(MIT_HEADS),
            patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
            out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True,
            drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
            init_cfg=(dict(type='Pretrained', checkpoint=pretrained)
                      if pretrained else None))
        self._map(f'model.backbone.type={btype!r}',
                  f"MixVisionTransformer(embed_dims={size['embed_dims']}, "
                  f"num_layers={size['num_layers']})")
        self._leftover(b, 'model.backbone')
        return out

    def _resnet_backbone(self, btype, b, pretrained):
        """ResNetV1c / ResNeXt / ResNeSt: mmseg 1.x has the same class
        with the same arguments; the reference's ``pretrained`` (e.g.
        ``open-mmlab://resnet101_v1c``) becomes a Pretrained init_cfg
        (mmengine resolves ``open-mmlab://`` names)."""
        out = dict(type=btype)
        for k in RESNET_BACKBONES[btype]:
            if k in b:
                out[k] = b.pop(k)
        if 'depth' not in out:
            self._reject('model.backbone.depth', None,
                         f'{btype} needs a depth')
        out['init_cfg'] = (dict(type='Pretrained', checkpoint=pretrained)
                           if pretrained else None)
        self._map(f'model.backbone.type={btype!r}',
                  f'{btype} (mmseg 1.x, same arguments)')
        self._leftover(b, 'model.backbone')
        return out

    def _decode_head(self, h, hrda=False):
        if h is None:
            self._reject('model.decode_head', None, 'required')
            return None
        h = dict(h)
        htype = h.pop('type', None)
        hrda_out = None
        inner = htype
        if htype == 'HRDAHead':
            single = h.pop('single_scale_head', None)
            if single not in HRDA_OUTPUT_STRIDES:
                self._reject('model.decode_head.single_scale_head', single,
                             'HRDAHead is converted with '
                             f'{list(HRDA_OUTPUT_STRIDES)} only')
            if not hrda:
                self._reject('model.decode_head.type', htype,
                             "HRDAHead needs model.type="
                             "'HRDAEncoderDecoder'")
            if single not in HRDA_OUTPUT_STRIDES or not hrda:
                self._leftover(h, 'model.decode_head')
                return dict(type=htype)
            hrda_out = self._hrda_head(h, single)
            inner = single
        elif hrda:
            self._reject('model.decode_head.type', htype,
                         "HRDAEncoderDecoder needs type='HRDAHead'")
            self._leftover(h, 'model.decode_head')
            return dict(type=htype)
        if inner == 'DAFormerHead':
            out = self._daformer_head(h)
        elif inner == 'DLV2Head':
            out = self._dlv2_head(h)
        elif inner == 'SegFormerHead':
            out = self._segformer_head(h)
        elif inner in MMSEG_HEADS:
            out = self._mmseg_head(inner, h)
        else:
            self._reject('model.decode_head.type', htype,
                         'only DAFormerHead, DLV2Head (and HRDAHead on '
                         'them), SegFormerHead and mmseg\'s '
                         f'{", ".join(MMSEG_HEADS)} are converted')
            self._leftover(h, 'model.decode_head')
            return dict(type=htype)
        if hrda_out is None:
            return out
        out.pop('type')
        hrda_out.update(out)
        return hrda_out

    def _loss_decode(self, h, out):
        loss = h.pop('loss_decode', None)
        if loss is not None:
            if isinstance(loss, dict) and loss.get('type') == \
                    'CrossEntropyLoss':
                out['loss_decode'] = dict(loss)
            else:
                self._reject('model.decode_head.loss_decode', loss,
                             'only CrossEntropyLoss is converted')

    def _mmseg_head(self, htype, h):
        """A head the reference takes from mmseg unchanged: mmseg 1.x's
        class of the same name and arguments."""
        out = dict(type=htype)
        for k in BASE_HEAD_KEYS + MMSEG_HEADS[htype]:
            if k in h:
                out[k] = h.pop(k)
        self._loss_decode(h, out)
        self._map(f'model.decode_head (type={htype!r})',
                  f'model.segmentor.decode_head (mmseg 1.x {htype}, same '
                  'arguments)')
        self._leftover(h, 'model.decode_head')
        return out

    def _segformer_head(self, h):
        """The reference's ``SegFormerHead`` (SegFormer's original: a
        plain linear embedding per level, ``embed_dim`` channels, upsampled
        and concatenated, one ``conv_kernel_size`` ConvModule with the
        head's norm + ReLU, dropout, a 1x1 classifier of PyTorch's default
        init) is DAFormerHead with a 'conv' fusion: embed_dims = channels =
        embed_dim, init_cfg=None (mmseg 1.x's ``SegformerHead`` differs: it
        puts norm + activation on each level's embedding)."""
        params = dict(h.pop('decoder_params', None) or {})
        dim = params.pop('embed_dim', None)
        k = params.pop('conv_kernel_size', 1)
        self._leftover(params, 'model.decode_head.decoder_params')
        if 'channels' in h:
            self._ignore('model.decode_head.channels', h.pop('channels'),
                         "ignored (no effect: the reference's SegFormerHead "
                         'never uses the conv_seg of this width)')
        out = dict(type='DAFormerHead')
        for k2 in ('in_channels', 'in_index', 'dropout_ratio', 'num_classes',
                   'norm_cfg', 'align_corners', 'ignore_index'):
            if k2 in h:
                out[k2] = h.pop(k2)
        if not isinstance(dim, int):
            self._reject('model.decode_head.decoder_params.embed_dim', dim,
                         'SegFormerHead needs an int embed_dim')
        out.update(channels=dim, embed_dims=dim,
                   fusion_cfg=dict(type='conv', kernel_size=k,
                                   act_cfg=dict(type='ReLU')),
                   init_cfg=None)
        self._loss_decode(h, out)
        self._map("model.decode_head type='SegFormerHead' (decoder_params "
                  'embed_dim, conv_kernel_size)',
                  "model.segmentor.decode_head type='DAFormerHead', "
                  "embed_dims=channels=embed_dim, fusion_cfg type='conv', "
                  'init_cfg=None (the classifier keeps PyTorch\'s init, as '
                  "the reference's linear_pred)")
        self._leftover(h, 'model.decode_head')
        return out

    def _dlv2_head(self, h):
        """The reference's DeepLabV2 head -> mmplugins ``DLV2Head`` (same
        name, arguments and init_cfg)."""
        out = dict(type='DLV2Head')
        for k in ('in_channels', 'in_index', 'dilations', 'num_classes',
                  'align_corners', 'ignore_index', 'conv_cfg', 'init_cfg'):
            if k in h:
                out[k] = h.pop(k)
        self._loss_decode(h, out)
        self._map('model.decode_head (DLV2Head)',
                  'model.segmentor.decode_head (DLV2Head: in_channels, '
                  'in_index, dilations, num_classes, init_cfg)')
        self._leftover(h, 'model.decode_head')
        return out

    def _hrda_head(self, h, single='DAFormerHead'):
        """HRDAHead's own keys (popped from ``h``); the single-scale part
        is converted by :meth:`_daformer_head` / :meth:`_dlv2_head`."""
        out = dict(type='HRDAHead', single_scale_head=single)
        path = 'model.decode_head'
        for k in HRDA_HEAD_COPIED:
            if k in h:
                out[k] = h.pop(k)
                self._map(f'{path}.{k}', f'model.segmentor.decode_head.{k}')
        lr_w = out.get('lr_loss_weight', 0)
        hr_w = out.get('hr_loss_weight', 0)
        if not (0 <= lr_w <= 1 and 0 <= hr_w <= 1 and lr_w + hr_w < 1):
            for k in ('lr_loss_weight', 'hr_loss_weight'):
                if k in out:
                    self.mapped.remove(
                        f'{path}.{k} -> model.segmentor.decode_head.{k}')
                    self._reject(f'{path}.{k}', out.pop(k),
                                 'HRDAHead needs both in [0, 1] with the '
                                 'fused weight 1 - lr - hr > 0')
        fixed = out.get('fixed_attention')
        if fixed is not None and not 0 <= fixed <= 1:
            self.mapped.remove(f'{path}.fixed_attention -> '
                               'model.segmentor.decode_head.fixed_attention')
            self._reject(f'{path}.fixed_attention', out.pop('fixed_attention'),
                         'must be in [0, 1]')
        for k in ('scales', 'enable_hr_crop', 'hr_slide_inference'):
            if k in h:
                self._ignore(f'{path}.{k}', h.pop(k),
                             'ignored (no effect: HRDAEncoderDecoder sets it)')
        if 'debug_output_attention' in h:
            v = h.pop('debug_output_attention')
            if v:
                self._reject(f'{path}.debug_output_attention', v,
                             'mmplugins writes no HRDA debug images')
            else:
                self._ignore(f'{path}.debug_output_attention', v,
                             'ignored (no effect)')
        self._map("model.decode_head type='HRDAHead' (single_scale_head="
                  f"{single!r})", "model.segmentor.decode_head type="
                  "'HRDAHead' + the single-scale head's keys")
        return out

    def _daformer_head(self, h):
        out = dict(type='DAFormerHead')
        for k in ('in_channels', 'in_index', 'channels', 'dropout_ratio',
                  'num_classes', 'norm_cfg', 'act_cfg', 'align_corners',
                  'ignore_index'):
            if k in h:
                out[k] = h.pop(k)
        params = dict(h.pop('decoder_params', None) or {})
        if 'embed_dims' in params:
            out['embed_dims'] = params.pop('embed_dims')
        for k in ('embed_cfg', 'embed_neck_cfg'):
            if k not in params:
                continue
            v = params.pop(k)
            plain = v == 'same_as_embed_cfg' or (
                isinstance(v, dict) and v.get('type') == 'mlp'
                and v.get('act_cfg') is None and v.get('norm_cfg') is None
                and set(v) <= {'type', 'act_cfg', 'norm_cfg'})
            if plain:
                self._ignore(f'model.decode_head.decoder_params.{k}', v,
                             'ignored (no effect: the mmplugins head embeds '
                             'each level with this linear layer)')
            elif k == 'embed_neck_cfg' and isinstance(v, dict) and \
                    v.get('type') == 'rawconv_and_aspp':
                neck = dict(v)
                out['embed_neck_cfg'] = {
                    k2: neck.pop(k2) for k2 in (
                        'type', 'kernel_size', 'sep', 'dilations', 'pool',
                        'norm_cfg', 'act_cfg') if k2 in neck}
                self._leftover(neck, 'model.decode_head.decoder_params.'
                               'embed_neck_cfg')
                self._map('model.decode_head.decoder_params.embed_neck_cfg '
                          "(type='rawconv_and_aspp')",
                          'model.segmentor.decode_head.embed_neck_cfg')
            else:
                self._reject(f'model.decode_head.decoder_params.{k}', v,
                             "only type='mlp' without norm/act (and "
                             "'rawconv_and_aspp' for embed_neck_cfg)")
        if 'fusion_cfg' in params:
            fusion = dict(params.pop('fusion_cfg'))
            ftype = fusion.pop('type', 'aspp')
            if ftype in ('conv', 'isa'):
                keys = ('kernel_size', ) if ftype == 'conv' else (
                    'isa_channels', 'down_factor', 'key_query_num_convs',
                    'in_conv_kernel_size', 'out_cat_and_conv')
                out['fusion_cfg'] = dict(type=ftype, **{
                    k: fusion.pop(k) for k in keys + ('norm_cfg', 'act_cfg')
                    if k in fusion})
                self._leftover(fusion,
                               'model.decode_head.decoder_params.fusion_cfg')
            elif ftype != 'aspp':
                self._reject('model.decode_head.decoder_params.fusion_cfg'
                             '.type', ftype,
                             "the mmplugins DAFormerHead fuses with 'aspp', "
                             "'conv' or 'isa' only")
            else:
                out['fusion_cfg'] = {
                    k: fusion.pop(k) for k in ('sep', 'dilations', 'pool',
                                               'norm_cfg', 'act_cfg')
                    if k in fusion}
                self._leftover(fusion,
                               'model.decode_head.decoder_params.fusion_cfg')
        self._leftover(params, 'model.decode_head.decoder_params')
        self._loss_decode(h, out)
        # no init_cfg: mmseg 1.x's BaseDecodeHead default (Normal(std=0.01),
        # bias 0 on conv_seg) is the reference's classifier init
        self._map('model.decode_head (DAFormerHead, decoder_params)',
                  'model.segmentor.decode_head (DAFormerHead embed_dims, '
                  'fusion_cfg)')
        self._leftover(h, 'model.decode_head')
        return out
