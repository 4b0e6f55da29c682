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
