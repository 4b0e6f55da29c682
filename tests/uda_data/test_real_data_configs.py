"""Real-data UDA configs (GTA5 -> Cityscapes, Samsung challenge) on tiny
fixtures in the real layouts, and the GTA5 label conversion."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

import mmplugins  # noqa: F401
from mmplugins.datasets.gta import ID_TO_TRAIN_ID, label_ids_to_train_ids
from _testutils import ROOT, set_data_root

CONVERTER = osp.join(ROOT, 'tools', 'dataset_converters', 'gta.py')


def test_label_ids_to_train_ids_is_the_cityscapes_table():
    ids = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = label_ids_to_train_ids(ids)
    assert out.dtype == np.uint8 and out.shape == ids.shape
    expected = np.full(256, 255)
    for i, t in ID_TO_TRAIN_ID.items():
        expected[i] = t
    assert out.ravel().tolist() == expected.tolist()
    # 19 classes, each train id once; road=7->0, bicycle=33->18
    assert sorted(ID_TO_TRAIN_ID.values()) == list(range(19))
    assert out.ravel()[7] == 0 and out.ravel()[33] == 18
    assert out.ravel()[0] == 255 and out.ravel()[34] == 255  # unlabeled, -1
    with pytest.raises(TypeError, match='integer'):
        label_ids_to_train_ids(np.zeros(3, np.float32))


def _palette_png(path, ids):
    im = Image.fromarray(ids.astype(np.uint8), mode='P')
    im.putpalette([v for i in range(256) for v in (i, i, i)])
    im.save(path)


def make_gta(root, sizes=((180, 320), (180, 320))):
    os.makedirs(osp.join(root, 'images'))
    os.makedirs(osp.join(root, 'labels'))
    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate(sizes):
        name = f'{k + 1:05d}.png'
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(osp.join(root, 'images', name))
        ids = np.zeros((h, w), np.uint8)  # 0 = unlabeled
        for j, cid in enumerate((7, 8, 11, 26)):  # road sidewalk building car
            ids[:, j * w // 4:(j + 1) * w // 4] = cid
        ids[:10] = 1  # ego vehicle -> ignore
        _palette_png(osp.join(root, 'labels', name), ids)


def make_cityscapes(root, h=256, w=512):
    rng = np.random.default_rng(1)
    for split in ('train', 'val'):
        d = osp.join(root, 'leftImg8bit', split, 'aachen')
        os.makedirs(d)
        g = osp.join(root, 'gtFine', split, 'aachen')
        os.makedirs(g)
        for k in range(2):
            stem = f'aachen_{k:06d}_000019'
            img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            Image.fromarray(img).save(osp.join(d, stem + '_leftImg8bit.png'))
            lbl = np.zeros((h, w), np.uint8)
            lbl[:, w // 2:] = 13  # car
            Image.fromarray(lbl).save(
                osp.join(g, stem + '_gtFine_labelTrainIds.png'))


def _convert(root, *extra):
    return subprocess.run(
        [sys.executable, CONVERTER, root, '--nproc', '1', *extra],
        capture_output=True, text=True)


def test_gta_converter_writes_train_ids_and_names_size_mismatches(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, sizes=((180, 320), (180, 320), (180, 320)))
    # the third label does not match its image (as a few GTA5 frames)
    Image.new('RGB', (330, 186)).save(osp.join(root, 'images', '00003.png'))
    res = _convert(root)
    assert res.returncode != 0
    assert '00003.png' in res.stdout and '--fix-sizes' in res.stderr
    out = np.asarray(Image.open(
        osp.join(root, 'labels', '00001_labelTrainIds.png')))
    assert out.shape == (180, 320)
    assert out[50, 0] == 0 and out[50, 319] == 13 and out[0, 0] == 255
    assert set(np.unique(out).tolist()) == {0, 1, 2, 13, 255}
    assert not osp.exists(osp.join(root, 'labels', '00003_labelTrainIds.png'))
    res = _convert(root, '--fix-sizes')
    assert res.returncode == 0, res.stderr
    assert '2 kept' in res.stdout and '1 resized' in res.stdout
    fixed = Image.open(osp.join(root, 'labels', '00003_labelTrainIds.png'))
    assert fixed.size == (330, 186)


def test_gta_converter_bad_root(tmp_path):
    res = _convert(str(tmp_path))
    assert res.returncode != 0 and 'images/*.png' in res.stderr


def test_gta_dataset_names_unconverted_labels(tmp_path):
    from mmseg.registry import DATASETS
    root = str(tmp_path / 'gta')
    make_gta(root)
    cfg = dict(type='GTADataset', data_root=root,
               data_prefix=dict(img_path='images', seg_map_path='labels'))
    with pytest.raises(FileNotFoundError, match='dataset_converters/gta.py'):
        DATASETS.build(cfg)
    assert _convert(root).returncode == 0
    ds = DATASETS.build(cfg)
    assert len(ds) == 2 and ds.metainfo['classes'][13] == 'car'


def _build_train_item(cfg):
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        return ds, ds[0]


def test_gta_to_cityscapes_configs_build_and_load(tmp_path):
    gta, cs = str(tmp_path / 'gta'), str(tmp_path / 'cityscapes')
    make_gta(gta)
    make_cityscapes(cs)
    assert _convert(gta).returncode == 0
    cfg = Config.fromfile(osp.join(ROOT, 'configs/real/mic_gta2cs.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.source.data_root = gta
    ds_cfg.target.data_root = cs
    cfg.val_dataloader.dataset.data_root = cs
    m = cfg.model
    assert (m.alpha, m.mask_lambda, m.mask_block_size) == (0.999, 1.0, 32)
    assert m.segmentor.decode_head.num_classes == 19
    assert m.segmentor.backbone.init_cfg.type == 'Pretrained'
    # mmengine's end is one past the step where the poly factor reaches 0
    assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_iters + 1 == 40001
    ds, item = _build_train_item(cfg)
    assert ds.rcs is not None  # DAFormer's rare class sampling is on
    assert tuple(item['inputs'].shape[-2:]) == (512, 512)
    assert tuple(item['target_inputs'].shape[-2:]) == (512, 512)
    gt = item['data_samples'].gt_sem_seg.data
    assert set(gt.unique().tolist()) <= {0, 1, 2, 13, 255}
    # Cityscapes val through mmseg's stock dataset
    from mmseg.registry import DATASETS
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == 2


def test_samsung_real_config_builds_on_the_challenge_layout(seg_demo_root):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/real/mic_dual_aug_samsung.py'))
    set_data_root(cfg, seg_demo_root)  # the demo is the challenge layout
    m = cfg.model
    assert (m.mask_lambda, m.dual_branch_lambda, m.alpha) == (1.0, 1.0, 0.999)
    assert m.segmentor.decode_head.channels == 256  # DAFormer on MiT-B5
    # the demo's 512x256 frames are smaller than the challenge's; the
    # pipeline resizes them to the challenge scale before the 512 crop
    cfg.train_dataloader.dataset.rare_class_sampling = None
    _, item = _build_train_item(cfg)
    assert tuple(item['inputs'].shape[-2:]) == (512, 512)
    assert tuple(item['dist_inputs'].shape[-2:]) == (512, 512)
    assert tuple(item['target_inputs'].shape[-2:]) == (512, 512)


def test_real_model_builds_without_downloading():
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs/real/mic_gta2cs.py'))
    cfg.model.segmentor.backbone.init_cfg = None  # no weights download
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    n = sum(p.numel() for p in model.student.parameters()) / 1e6
    assert 84 < n < 86  # MiT-B5 (81.4 M) + DAFormer head with 256 channels
    assert model.imnet_model is not None  # feature distance is on


def test_hrda_gta_to_cityscapes_config_loads_1024_crops_with_margins(
        tmp_path):
    """MIC(HRDA): 1024x1024 crops of the full-resolution frames, the v2
    pseudo-label margins packed with the target, RCS min_crop_ratio 2."""
    gta, cs = str(tmp_path / 'gta'), str(tmp_path / 'cityscapes')
    make_gta(gta)
    make_cityscapes(cs)
    assert _convert(gta).returncode == 0
    cfg = Config.fromfile(osp.join(ROOT, 'configs/real/mic_hrda_gta2cs.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.source.data_root = gta
    ds_cfg.target.data_root = cs
    m = cfg.model
    assert (m.mask_mode, m.mask_lambda, m.mask_block_size, m.alpha) == (
        'separatetrgaug', 1.0, 64, 0.999)
    s = m.segmentor
    assert (s.type, s.scales, tuple(s.hr_crop_size), s.feature_scale,
            s.crop_coord_divisible) == ('HRDAEncoderDecoder', [1, 0.5],
                                        (512, 512), 0.5, 8)
    assert s.decode_head.hr_loss_weight == 0.1
    assert s.test_cfg.stride == (512, 512)
    assert ds_cfg.rare_class_sampling.min_crop_ratio == 2.0
    assert ds_cfg.target.crop_pseudo_margins == [30, 240, 30, 30]
    # the fixture frames are 1/4 of Cityscapes' side: margins scaled alike
    ds_cfg.target.crop_pseudo_margins = [8, 60, 8, 8]
    _, item = _build_train_item(cfg)
    assert tuple(item['inputs'].shape[-2:]) == (1024, 1024)
    assert tuple(item['target_inputs'].shape[-2:]) == (1024, 1024)
    valid = item['target_data_samples'].valid_pseudo_mask.data
    assert tuple(valid.shape[-2:]) == (1024, 1024)


def test_hrda_real_models_build_without_downloading(seg_demo_root):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/real/mic_hrda_dual_aug_samsung.py'))
    cfg.model.segmentor.backbone.init_cfg = None  # no weights download
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    head = model.student.decode_head
    assert type(model.student).__name__ == 'HRDAEncoderDecoder'
    assert head.head.channels == 256 and head.scale_attention.channels == 256
    assert head.scale_attention.num_classes == 12  # class-wise attention
    # the teacher is an EMA copy of the whole HRDA model
    assert type(model.teacher).__name__ == 'HRDAEncoderDecoder'
    assert model.mic is not None and model.mic.block_size == 64
    set_data_root(cfg, seg_demo_root)  # the demo is the challenge layout
    cfg.train_dataloader.dataset.rare_class_sampling = None
    _, item = _build_train_item(cfg)
    assert tuple(item['inputs'].shape[-2:]) == (1024, 1024)
    assert tuple(item['dist_inputs'].shape[-2:]) == (1024, 1024)
