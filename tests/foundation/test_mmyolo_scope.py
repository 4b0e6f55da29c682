"""tools/ with default_scope='mmyolo': mmengine's stray ``_scope_`` keys
(collate_fn, Albu) removed where tools/ load configs, and ``scope.Name``
looked up in that scope's registries by the config check."""
import copy
import inspect

import pytest

pytest.importorskip('mmyolo', reason='mmyolo is installed by `make install`')

from _toolbox import load_config, setup_toolbox  # noqa: E402

# a user config that reuses mmyolo's albumentations list, as mmyolo's own
# configs do
CONFIG = '''
_base_ = 'mmyolo::yolov5/yolov5_n-v61_syncbn_fast_8xb16-300e_coco.py'
custom_imports = dict(imports=['mmplugins'], allow_failed_imports=False)
albu_train_transforms = _base_.albu_train_transforms
train_pipeline = [
    dict(type='mmdet.Albu', transforms=albu_train_transforms,
         bbox_params=dict(type='BboxParams', format='pascal_voc',
                          label_fields=['gt_bboxes_labels',
                                        'gt_ignore_flags']),
         keymap={'img': 'image', 'gt_bboxes': 'bboxes'}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
'''


def _build_albu_and_bind_collate(cfg):
    """What the Runner does with these two entries."""
    import mmyolo.utils
    from mmengine.registry import FUNCTIONS, init_default_scope
    from mmyolo.registry import TRANSFORMS
    mmyolo.utils.register_all_modules(init_default_scope=False)
    init_default_scope('mmyolo')
    TRANSFORMS.build(copy.deepcopy(cfg.train_dataloader.dataset.pipeline[0]))
    collate = dict(cfg.train_dataloader.collate_fn)
    fn = FUNCTIONS.get(collate.pop('type'))
    inspect.signature(fn).bind([], **collate)  # partial(fn, **cfg)(batch)


def test_stray_scope_keys_removed(tmp_path):
    from mmengine.config import Config
    path = tmp_path / 'yolo_albu.py'
    path.write_text(CONFIG)
    raw = Config.fromfile(str(path))
    assert raw.train_dataloader.collate_fn['_scope_'] == 'mmyolo'
    with pytest.raises(TypeError, match='_scope_'):
        _build_albu_and_bind_collate(raw)
    cfg = load_config(str(path))
    _build_albu_and_bind_collate(cfg)
    # nothing else loses its scope (mmdet's LoadAnnotations keeps 'mmdet')
    load_ann = [t for t in cfg.test_dataloader.dataset.pipeline
                if t['type'] == 'LoadAnnotations']
    assert load_ann[0]['_scope_'] == 'mmdet'
    assert cfg.model['_scope_'] == raw.model['_scope_']


def test_config_check_resolves_scope_dot_name():
    cfg = load_config('configs/diet_det/yolov5_n_full_data.py')
    assert cfg.default_hooks.visualization.type == 'mmdet.DetVisualizationHook'
    assert setup_toolbox(cfg) == 'mmyolo'  # mmdet.* found in mmdet
    # YOLOv5Head is mmyolo's: `mmdet.YOLOv5Head` must not resolve
    bad = load_config('configs/diet_det/yolov5_n_full_data.py',
                      {'model.bbox_head.type': 'mmdet.YOLOv5Head'})
    with pytest.raises(KeyError, match=r"'mmdet.YOLOv5Head' at "
                       r"`model.bbox_head.type`.*scope 'mmdet'"):
        setup_toolbox(bad)
    # and from an mmdet config, `mmyolo.X` is looked up in mmyolo
    det = load_config('configs/diet_det/rtmdet_tiny_full_data.py',
                      {'model.neck.type': 'mmyolo.YOLOv5PAFPN'})
    assert setup_toolbox(det) == 'mmdet'
    det = load_config('configs/diet_det/rtmdet_tiny_full_data.py',
                      {'model.neck.type': 'nosuchscope.FPN'})
    with pytest.raises(KeyError, match="scope 'nosuchscope' is not an "
                       'installed package'):
        setup_toolbox(det)
