"""Our weights written in the reference's names, derived for the tests by
reading the reference's module definitions (independently of the code under
test, which uses mmseg's mit2mmseg.py and the tables of
mmplugins/conversion/checkpoints.py).

SegFormer's MixVisionTransformer (DAFormer/HRDA/MIC
``mmseg/models/backbones/mix_transformer.py``): ``patch_embed{s}`` =
OverlapPatchEmbed(``proj`` Conv2d, ``norm`` LayerNorm); ``block{s}`` =
ModuleList of Block(``norm1``, ``attn`` = Attention(``q`` Linear(C, C),
``kv`` Linear(C, 2C) -- k then v --, ``proj`` Linear, ``sr`` Conv2d and
``norm`` LayerNorm when sr_ratio > 1), ``norm2``, ``mlp`` = Mlp(``fc1``
Linear, ``dwconv.dwconv`` Conv2d, ``fc2`` Linear)); ``norm{s}`` LayerNorm;
stages s = 1..4.

mmseg 1.x's (mmseg/models/backbones/mit.py): ``layers.{s-1}`` =
[PatchEmbed(``projection``, ``norm``), ModuleList of
TransformerEncoderLayer(``norm1``, ``attn`` = EfficientMultiheadAttention(
``attn`` = nn.MultiheadAttention(``in_proj_weight`` = [q; k; v] rows,
``out_proj``), ``sr``, ``norm``), ``norm2``, ``ffn`` = MixFFN(``layers`` =
0: 1x1 Conv2d, 1: depthwise 3x3 Conv2d, 4: 1x1 Conv2d)), LayerNorm].

DAFormerHead (DAFormer ``decode_heads/daformer_head.py``): ``embed_layers``
= ModuleDict keyed by ``str(level)`` of MLP(``proj`` Linear) for
embed_cfg 'mlp'; ``fuse_layer`` = ASPPWrapper(``image_pool``,
``aspp_modules`` (ASPPModule / DepthwiseSeparableASPPModule of ConvModules),
``bottleneck`` ConvModule) for 'aspp', a ConvModule for 'conv';
``conv_seg`` (BaseDecodeHead). HRDAHead (HRDA ``decode_heads/hrda_head.py``):
``head`` and ``scale_attention`` (DAFormerHeads), its own conv_seg deleted.
DACS (``uda/dacs.py``): ``model``, ``ema_model``, ``imnet_model`` (a whole
segmentor); MIC's MaskingConsistencyModule: ``mic.teacher`` = EMATeacher
(``ema_model``).
"""
import re
from collections import OrderedDict


def mit_to_segformer(sd):
    """mmseg 1.x MiT keys -> SegFormer's (a backbone's own state dict)."""
    out = OrderedDict()
    for k, v in sd.items():
        m = re.fullmatch(r'layers\.(\d+)\.(\d+)\.(.+)', k)
        assert m, k
        stage, part, rest = int(m.group(1)) + 1, int(m.group(2)), m.group(3)
        if part == 0:  # patch embedding
            rest = rest.replace('projection.', 'proj.')
            out[f'patch_embed{stage}.{rest}'] = v
        elif part == 2:  # stage norm
            out[f'norm{stage}.{rest}'] = v
        else:
            j, name = re.fullmatch(r'(\d+)\.(.+)', rest).groups()
            pre = f'block{stage}.{j}.'
            if name.startswith('attn.attn.in_proj_'):
                p = name[len('attn.attn.in_proj_'):]
                c = v.shape[0] // 3
                out[pre + f'attn.q.{p}'] = v[:c].clone()
                out[pre + f'attn.kv.{p}'] = v[c:].clone()
            elif name.startswith('attn.attn.out_proj.'):
                out[pre + 'attn.proj.' + name.split('.')[-1]] = v
            elif name.startswith(('attn.sr.', 'attn.norm.', 'norm1.',
                                  'norm2.')):
                out[pre + name] = v
            else:
                layer, p = re.fullmatch(r'ffn\.layers\.(\d)\.(\w+)',
                                        name).groups()
                ref = {'0': 'mlp.fc1', '1': 'mlp.dwconv.dwconv',
                       '4': 'mlp.fc2'}[layer]
                if layer in '04' and p == 'weight':  # Linear in SegFormer
                    v = v.reshape(v.shape[0], v.shape[1])
                out[f'{pre}{ref}.{p}'] = v
    return out


def daformer_head_to_ref(sd, in_index=(0, 1, 2, 3)):
    out = OrderedDict()
    for k, v in sd.items():
        m = re.fullmatch(r'embed_layers\.(\d+)\.(weight|bias)', k)
        if m:
            level = in_index[int(m.group(1))]
            if m.group(2) == 'weight':
                v = v.reshape(v.shape[0], v.shape[1])
            out[f'embed_layers.{level}.proj.{m.group(2)}'] = v
        else:  # fuse_layer (mmcv ConvModule names), conv_seg
            assert k.startswith(('fuse_layer.', 'conv_seg.')), k
            out[k] = v
    return out


def head_to_ref(sd):
    if any(k.startswith('scale_attention.') for k in sd):  # HRDAHead
        out = OrderedDict()
        for part in ('head.', 'scale_attention.'):
            sub = OrderedDict((k[len(part):], v) for k, v in sd.items()
                              if k.startswith(part))
            out.update((part + k, v)
                       for k, v in daformer_head_to_ref(sub).items())
        return out
    return daformer_head_to_ref(sd)


def segmentor_to_ref(sd):
    out = OrderedDict()
    for part, fn in (('backbone.', mit_to_segformer),
                     ('decode_head.', head_to_ref)):
        sub = OrderedDict((k[len(part):], v) for k, v in sd.items()
                          if k.startswith(part))
        out.update((part + k, v) for k, v in fn(sub).items())
    left = [k for k in sd if not k.startswith(('backbone.', 'decode_head.'))]
    assert not left, left
    return out


def uda_to_ref(sd, imnet_head=None):
    """Our UDASegmentor state dict -> the reference DACS's. ``imnet_head``:
    the decode-head tensors the reference's whole-segmentor imnet_model
    also holds (ours has none)."""
    out = OrderedDict()
    for ours, ref in (('student.', 'model.'), ('teacher.', 'ema_model.'),
                      ('mic.teacher.', 'mic.teacher.ema_model.')):
        sub = OrderedDict((k[len(ours):], v) for k, v in sd.items()
                          if k.startswith(ours))
        out.update((ref + k, v) for k, v in segmentor_to_ref(sub).items())
    imnet = OrderedDict((k[len('imnet_model.'):], v) for k, v in sd.items()
                        if k.startswith('imnet_model.'))
    if imnet:
        assert all(k.startswith('backbone.') for k in imnet), list(imnet)
        out.update(('imnet_model.backbone.' + k, v) for k, v in
                   mit_to_segformer(
                       OrderedDict((k[len('backbone.'):], v)
                                   for k, v in imnet.items())).items())
        for k, v in (imnet_head or {}).items():
            out['imnet_model.decode_head.' + k] = v
    left = [k for k in sd if not k.startswith(
        ('student.', 'teacher.', 'mic.teacher.', 'imnet_model.'))]
    assert left == ['local_iter'], left
    return out
