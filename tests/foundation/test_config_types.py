"""Every shipped config loads, and every `type=` in it resolves."""
import glob
import os.path as osp

import pytest

from _toolbox import load_config, setup_toolbox

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_types_resolve(path):
    cfg = load_config(path)
    assert cfg.get('default_scope') in ('mmseg', 'mmdet', 'mmpretrain',
                                        'mmyolo')
    assert 'mmplugins' in cfg.custom_imports['imports']
    setup_toolbox(cfg)  # raises KeyError naming the key of an unknown type


def test_unknown_type_error_names_key_file_and_suggestion():
    path = osp.join(ROOT, 'configs', 'source_only.py')
    cfg = load_config(path, {'model.decode_head.type': 'SegformerHaed'})
    with pytest.raises(KeyError) as e:
        setup_toolbox(cfg)
    msg = str(e.value)
    assert "'SegformerHaed'" in msg and '`model.decode_head.type`' in msg
    assert 'source_only.py' in msg and 'SegformerHead' in msg


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match='no_such.py'):
        load_config('configs/no_such.py')


# ---- one source of truth: the pre-flight accepts what the modules accept --
def _head_cfg(fusion_type):
    fusion = dict(type=fusion_type)
    if fusion_type == 'isa':
        fusion['isa_channels'] = 4
    return dict(type='DAFormerHead', in_channels=[8, 8], in_index=[0, 1],
                channels=8, embed_dims=8, num_classes=3, fusion_cfg=fusion)


def _preflight(model):
    from mmplugins.utils.config_check import check_config_types
    import mmseg.utils
    mmseg.utils.register_all_modules(init_default_scope=False)
    check_config_types(dict(model=model), 'mmseg', 'x.py')


def _build(model):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(model)


def test_nested_types_are_the_ones_the_head_builds():
    """Every fusion type DAFormerHead declares passes the pre-flight AND
    builds; a type outside the declaration fails both, the pre-flight
    naming the key and the accepted names."""
    import mmplugins  # noqa: F401
    from mmplugins.models.decode_heads.daformer_head import (DAFormerHead,
                                                             FUSION_TYPES)
    assert DAFormerHead.NESTED_TYPES['fusion_cfg'] == FUSION_TYPES
    assert set(FUSION_TYPES) == {'aspp', 'conv', 'isa'}
    for t in FUSION_TYPES:
        _preflight(_head_cfg(t))
        assert _build(_head_cfg(t)).fusion_cfg['type'] == t
    with pytest.raises(KeyError) as e:
        _preflight(_head_cfg('sepaspp'))
    msg = str(e.value)
    assert '`model.fusion_cfg.type`' in msg and \
        "['aspp', 'conv', 'isa']" in msg
    with pytest.raises(ValueError, match="'sepaspp'"):
        _build(_head_cfg('sepaspp'))


def test_nested_types_reach_through_hrda_and_decoder_params():
    import mmplugins  # noqa: F401
    head = dict(type='HRDAHead', single_scale_head='DAFormerHead',
                in_channels=[8, 8], channels=8, num_classes=3,
                decoder_params=dict(embed_dims=8,
                                    embed_cfg=dict(type='mlp'),
                                    fusion_cfg=dict(type='aspp')))
    _preflight(head)
    head['decoder_params']['embed_cfg']['type'] = 'mpl'
    with pytest.raises(KeyError, match=r"decoder_params\.embed_cfg\.type.*"
                       r"\['mlp'\]"):
        _preflight(head)
    # a registered type elsewhere is still checked against the registries
    with pytest.raises(KeyError, match='not registered'):
        _preflight(dict(type='EncoderDecoder', backbone=dict(type='MiTT')))


def test_mask_generator_type_is_a_registry_entry():
    """MIC's mask_generator=dict(type='block') is built from the registry
    that the pre-flight reads (it used to be a private string check)."""
    import mmplugins  # noqa: F401
    from mmseg.registry import TASK_UTILS

    from mmplugins.models.uda.masking_consistency import (
        BlockMaskGenerator, resolve_mask_generator)
    assert TASK_UTILS.get('block') is BlockMaskGenerator
    assert resolve_mask_generator(
        dict(type='block', mask_block_size=16, mask_ratio=0.5), None,
        None) == (16, 0.5)
    _preflight(dict(type='UDASegmentor', mask_generator=dict(type='block')))
    with pytest.raises(KeyError, match="'blocks'"):
        _preflight(dict(type='UDASegmentor',
                        mask_generator=dict(type='blocks')))
    with pytest.raises(ValueError, match="unknown type 'blocks'"):
        resolve_mask_generator(dict(type='blocks'), None, None)
