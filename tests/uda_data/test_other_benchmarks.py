"""Issue 21 (datasets): SYNTHIA, ACDC and Dark Zurich in their reference
layouts (generated demo trees), their converters, mIoU16 / mIoU13 and
tools/check_data.py on them."""
import importlib.util
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from _testutils import ROOT
from mmplugins.datasets.demo.uda_benchmarks_demo import (
    demo_train_ids, make_acdc_demo, make_dark_zurich_demo, make_synthia_demo)

LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')]


def _tool(name):
    path = osp.join(ROOT, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'conv_{name}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build(cfg):
    from mmseg.registry import DATASETS
    return DATASETS.build(cfg)


def _synthia_cfg(root, **kw):
    return dict(type='SynthiaDataset', data_root=root,
                data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'),
                pipeline=LOAD, **kw)


@pytest.fixture
def synthia_root(tmp_path):
    root = str(tmp_path / 'synthia')
    make_synthia_demo(root, num=3)
    _tool('synthia').main([root, '--nproc', '1'])
    return root


# ----------------------------------------------------------------- SYNTHIA
def test_synthia_ids_by_hand(synthia_root):
    ds = _build(_synthia_cfg(synthia_root))
    assert len(ds) == 3
    assert ds.metainfo['classes'][13] == 'car'
    gt0 = ds[0]['data_samples'].gt_sem_seg.data[0].numpy()
    # row 0 of image 0: column x holds SYNTHIA id x (demo docstring);
    # SYNTHIA README ids -> Cityscapes train ids, by hand:
    # 0 void->255, 1 sky->10, 2 building->2, 3 road->0, 4 sidewalk->1,
    # 5 fence->4, 7 pole->5, 8 car->13, 11 bicycle->18, 12 motorcycle->17,
    # 13 parking-slot->255, 15 traffic light->6, 21 wall->3,
    # 22 lanemarking->255
    by_hand = {0: 255, 1: 10, 2: 2, 3: 0, 4: 1, 5: 4, 7: 5, 8: 13, 11: 18,
               12: 17, 13: 255, 15: 6, 21: 3, 22: 255}
    for x, train_id in by_hand.items():
        assert gt0[0, x] == train_id, (x, gt0[0, x], train_id)
    assert (gt0[-1] == 255).all()  # id 0 (void) in the bottom row
    # image 1 is shifted by one column: column 2 holds id 3 (road)
    gt1 = ds[1]['data_samples'].gt_sem_seg.data[0].numpy()
    assert gt1[5, 2] == 0 and gt1[5, 0] == 10
    # converted files: 8-bit L PNGs, nothing half-written left behind
    lbl_dir = osp.join(synthia_root, 'GT', 'LABELS')
    with Image.open(osp.join(lbl_dir, '0000000_labelTrainIds.png')) as im:
        assert im.mode == 'L'
    assert not [f for f in os.listdir(lbl_dir) if 'tmp' in f]


def test_synthia_converter_writes_rcs_stats(synthia_root, capsys):
    from mmplugins.datasets.class_stats import compute_class_stats
    ds = _build(_synthia_cfg(synthia_root))
    stats = compute_class_stats(ds)
    assert stats.status == 'loaded'  # the converter's cache is reused
    # road = SYNTHIA id 3: in image i at columns 3 - i and 26 - i (40
    # wide, ids repeat every 23), rows 0..22 of 24 (the last is void)
    assert stats.counts[:, 0].tolist() == [46, 46, 46]
    # a re-run keeps the converted labels
    _tool('synthia').main([synthia_root, '--nproc', '1', '--no-stats'])
    assert '3 kept' in capsys.readouterr().out


def test_synthia_bad_layouts(tmp_path, synthia_root):
    # labels not converted: one error naming the converter
    raw = str(tmp_path / 'raw')
    make_synthia_demo(raw, num=2)
    with pytest.raises(FileNotFoundError, match=r'have no converted label'
                       r'.*dataset_converters/synthia\.py'):
        _build(_synthia_cfg(raw))
    # RGB/ missing: the dataset and the converter name the folder
    shutil.rmtree(osp.join(raw, 'RGB'))
    with pytest.raises(FileNotFoundError,
                       match=f'{osp.join(raw, "RGB")} is not a folder.*'
                       'SYNTHIA-RAND-CITYSCAPES layout'):
        _build(_synthia_cfg(raw))
    with pytest.raises(SystemExit, match=f'{osp.join(raw, "RGB")}: not a '
                       'folder'):
        _tool('synthia').main([raw, '--nproc', '1'])
    # an 8-bit label where the original 16-bit 3-channel one is expected
    bad = osp.join(raw, 'GT', 'LABELS', '0000009.png')
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(bad)
    from mmplugins.datasets.synthia import read_synthia_label
    with pytest.raises(ValueError, match=f'{bad}: SYNTHIA label of shape '
                       r'\(4, 4\).*16-bit, 3 channels'):
        read_synthia_label(bad)


def test_synthia_mapping_table():
    from mmplugins.datasets.synthia import (SYNTHIA_13_CLASSES,
                                            SYNTHIA_16_CLASSES,
                                            synthia_ids_to_train_ids)
    ids = np.array([[3, 4, 2, 21, 5, 7, 15, 9, 6, 16, 1, 10, 17, 8, 18, 19,
                     20, 12, 11, 0, 13, 14, 22, 300]])
    assert synthia_ids_to_train_ids(ids).tolist() == [
        list(range(19)) + [255] * 5]
    assert len(SYNTHIA_16_CLASSES) == 16 and len(SYNTHIA_13_CLASSES) == 13
    assert {'terrain', 'truck', 'train'}.isdisjoint(SYNTHIA_16_CLASSES)
    assert set(SYNTHIA_16_CLASSES) - set(SYNTHIA_13_CLASSES) == {
        'wall', 'fence', 'pole'}


# -------------------------------------------------------------------- ACDC
def _acdc_cfg(root, split, labels=True):
    prefix = dict(img_path=f'rgb_anon/{split}')
    if labels:
        prefix['seg_map_path'] = f'gt/{split}'
    return dict(type='ACDCDataset', data_root=root, data_prefix=prefix,
                pipeline=LOAD if labels else LOAD[:1] + LOAD[2:])


def test_acdc_flatten_and_read(tmp_path):
    root = str(tmp_path / 'acdc')
    made = make_acdc_demo(root, per_split=1)
    # not flattened yet: the error says what to run
    with pytest.raises(FileNotFoundError,
                       match="per-condition layout.*dataset_converters/acdc"):
        _build(_acdc_cfg(root, 'train'))
    _tool('acdc').main([root])
    # one image per condition and split; train_ref and labelIds left out
    for split in ('train', 'val', 'test'):
        files = sorted(os.listdir(osp.join(root, 'rgb_anon', split)))
        assert files == sorted(osp.basename(p) for p in made[split])
    assert sorted(os.listdir(osp.join(root, 'gt', 'val'))) == sorted(
        osp.basename(p) for p in made['labels_val'])
    assert not osp.exists(osp.join(root, 'gt', 'test'))
    ds = _build(_acdc_cfg(root, 'val'))
    assert len(ds) == 4 and ds.metainfo['classes'][0] == 'road'
    for i in range(4):
        item = ds[i]
        name = osp.basename(item['data_samples'].img_path)
        k = int(name.split('_')[2])  # frame number = demo index - 1
        np.testing.assert_array_equal(
            item['data_samples'].gt_sem_seg.data[0].numpy(),
            demo_train_ids(k + 1, 18, 32))
    test = _build(_acdc_cfg(root, 'test', labels=False))
    assert len(test) == 4 and 'gt_sem_seg' not in test[0]['data_samples']


def test_acdc_condition_missing(tmp_path):
    root = str(tmp_path / 'acdc')
    make_acdc_demo(root)
    shutil.rmtree(osp.join(root, 'rgb_anon', 'snow'))
    missing = osp.join(root, 'rgb_anon', 'snow')
    with pytest.raises(SystemExit, match=f'condition folder.* missing: '
                       f'{missing}'):
        _tool('acdc').main([root])
    assert not osp.exists(osp.join(root, 'rgb_anon', 'train'))  # nothing
    with pytest.raises(FileNotFoundError,
                       match=f'condition folders missing: {missing}'):
        _build(_acdc_cfg(root, 'train'))


# ------------------------------------------------------------- Dark Zurich
def test_dark_zurich_reference_layout(tmp_path):
    root = str(tmp_path / 'dark_zurich')
    made = make_dark_zurich_demo(root, per_folder=2)
    # the reference config's folders, mmseg 1.x's DarkZurichDataset
    val = _build(dict(type='DarkZurichDataset', data_root=root,
                      data_prefix=dict(img_path='rgb_anon/val',
                                       seg_map_path='gt/val'),
                      pipeline=LOAD))
    assert [val.get_data_info(i)['img_path'] for i in range(len(val))] \
        == made['val']
    for j in range(2):
        np.testing.assert_array_equal(
            val[j]['data_samples'].gt_sem_seg.data[0].numpy(),
            demo_train_ids(j, 18, 32))
    train = _build(dict(type='DarkZurichDataset', data_root=root,
                        data_prefix=dict(img_path='rgb_anon/train/night/',
                                         seg_map_path='gt/train/night/'),
                        pipeline=LOAD[:1] + LOAD[2:]))
    assert len(train) == 2 and train[0]['inputs'].shape == (3, 18, 32)


# ------------------------------------------------------- mIoU16 / mIoU13
def test_miou13_by_hand():
    from mmseg.datasets import CityscapesDataset
    from mmplugins.evaluation.metrics.subset_iou import SubsetIoUMetric
    metric = SubsetIoUMetric(subsets='synthia')
    metric.dataset_meta = CityscapesDataset.METAINFO
    # class c: 4 labelled pixels, c % 5 of them predicted c, the others
    # predicted 255 (no class): IoU_c = (c % 5) / 4
    label = torch.arange(19).repeat_interleave(4)
    pred = label.clone()
    for c in range(19):
        pred[4 * c + c % 5:4 * c + 4] = 255
    metric.results = [metric.intersect_and_union(pred, label, 19, 255)]
    res = metric.compute_metrics(metric.results)
    # the 13 classes: road 0, sidewalk 1, building 2, traffic light 6,
    # traffic sign 7, vegetation 8, sky 10, person 11, rider 12, car 13,
    # bus 15, motorcycle 17, bicycle 18 -> c % 5 = 0+1+2+1+2+3+0+1+2+3+0+2+3
    assert res['mIoU13'] == round(20 / 4 / 13 * 100, 2)  # 38.46
    # + wall 3, fence 4, pole 5 -> + 3 + 4 + 0
    assert res['mIoU16'] == round(27 / 4 / 16 * 100, 2)  # 42.19
    # + terrain 9, truck 14, train 16 -> + 4 + 4 + 1
    assert res['mIoU'] == round(36 / 4 / 19 * 100, 2)


def test_subset_metric_arguments():
    from mmseg.registry import METRICS
    from mmplugins.evaluation.metrics.subset_iou import subset_mean_iou
    with pytest.raises(ValueError, match="unknown subsets preset 'gta'"):
        METRICS.build(dict(type='SubsetIoUMetric', subsets='gta'))
    with pytest.raises(ValueError, match="'mIoU5': 'road'"):
        METRICS.build(dict(type='SubsetIoUMetric', subsets=dict(mIoU5='road')))
    with pytest.raises(ValueError, match="class 'roads' is not one of"):
        subset_mean_iou(np.zeros(2), ['road', 'sky'], ['roads'])
    assert subset_mean_iou(np.array([0.5, np.nan, 1.0]), ['a', 'b', 'c'],
                           ['a', 'b', 2]) == 0.75


# ------------------------------------------------------------ check_data
def _check_cfg(path, synthia, acdc):
    src = _synthia_cfg(synthia)
    src.pop('type')
    text = (
        "default_scope = 'mmseg'\n"
        "custom_imports = dict(imports=['mmplugins'], "
        'allow_failed_imports=False)\n'
        'train_dataloader = dict(batch_size=1, dataset=dict('
        f"type='UDADataset', source=dict(type='SynthiaDataset', **{src!r}),"
        f" target={_acdc_cfg(acdc, 'train', labels=False)!r}))\n"
        'val_dataloader = dict(batch_size=1, '
        f"dataset={_acdc_cfg(acdc, 'val')!r})\n")
    with open(path, 'w') as f:
        f.write(text)
    return path


def test_check_data_other_benchmarks(tmp_path, synthia_root, capsys):
    import check_data
    acdc = str(tmp_path / 'acdc')
    make_acdc_demo(acdc)
    _tool('acdc').main([acdc])
    cfg = _check_cfg(str(tmp_path / 'c.py'), synthia_root, acdc)
    assert check_data.main([cfg]) == 0, capsys.readouterr().out
    assert 'OK: 11 items checked' in capsys.readouterr().out  # 3 + 4 + 4
    # a label PNG of the wrong mode (a colour image) in place of train ids
    bad = osp.join(synthia_root, 'GT', 'LABELS', '0000001_labelTrainIds.png')
    Image.fromarray(np.zeros((24, 40, 3), np.uint8)).save(bad)
    # ACDC not flattened: gt/val missing
    shutil.rmtree(osp.join(acdc, 'gt', 'val'))
    assert check_data.main([cfg]) == 1
    out = capsys.readouterr().out
    assert (f'[unreadable label] {bad}: label has shape (24, 40, 3) (mode '
            'RGB); expected an 8-bit single-channel (mode L) or palette '
            '(mode P) PNG of class ids') in out
    assert (f"ACDCDataset: {osp.join(acdc, 'gt', 'val')} is not a folder"
            in out)
    # SYNTHIA's RGB/ missing
    shutil.rmtree(osp.join(synthia_root, 'RGB'))
    assert check_data.main([cfg, '--splits', 'train']) == 1
    out = capsys.readouterr().out
    assert (f"SynthiaDataset: {osp.join(synthia_root, 'RGB')} is not a "
            'folder; expected the SYNTHIA-RAND-CITYSCAPES layout') in out


# ------------------------------------------------- configs/_base_/uda bases
BENCH_CONFIGS = {
    # (config, benchmark, crop): the DAFormer-scale bases and the MIC(HRDA)
    # rows of configs/real at 1024x1024
    'uda_synthia_to_cityscapes': (
        '_base_/uda/uda_synthia_to_cityscapes.py', 'synthia', 512),
    'uda_cityscapes_to_acdc': (
        '_base_/uda/uda_cityscapes_to_acdc.py', 'acdc', 512),
    'uda_cityscapes_to_dark_zurich': (
        '_base_/uda/uda_cityscapes_to_dark_zurich.py', 'dark_zurich', 512),
    'mic_hrda_synthia2cs': ('real/mic_hrda_synthia2cs.py', 'synthia', 1024),
    'mic_hrda_cs2acdc': ('real/mic_hrda_cs2acdc.py', 'acdc', 1024),
    'mic_hrda_cs2darkzurich': (
        'real/mic_hrda_cs2darkzurich.py', 'dark_zurich', 1024),
}


@pytest.mark.parametrize('name', sorted(BENCH_CONFIGS))
def test_uda_configs_read_demo_trees(tmp_path, name):
    from mmengine.config import Config
    from test_real_data_configs import make_cityscapes
    path, bench, crop = BENCH_CONFIGS[name]
    cfg = Config.fromfile(osp.join(ROOT, 'configs', path))
    ds_cfg = cfg.train_dataloader.dataset
    cs = str(tmp_path / 'cityscapes')
    make_cityscapes(cs, h=64, w=128)
    if bench == 'synthia':
        other = str(tmp_path / 'synthia')
        make_synthia_demo(other, num=2)
        _tool('synthia').main([other, '--nproc', '1', '--no-stats'])
        ds_cfg.source.data_root, ds_cfg.target.data_root = other, cs
        cfg.val_dataloader.dataset.data_root = cs
        assert cfg.val_evaluator == dict(
            type='SubsetIoUMetric', iou_metrics=['mIoU'], subsets='synthia')
    else:
        other = str(tmp_path / 'target')
        if bench == 'acdc':
            make_acdc_demo(other)
            _tool('acdc').main([other])
        else:
            make_dark_zurich_demo(other)
        ds_cfg.source.data_root, ds_cfg.target.data_root = cs, other
        cfg.val_dataloader.dataset.data_root = other
        # no rectification margins on ACDC / Dark Zurich (the reference's)
        assert ds_cfg.target.get('crop_pseudo_margins') is None
        if crop == 1024:
            assert cfg.model.mask_mode == 'separate'
    if crop == 1024 and bench == 'synthia':
        ds_cfg.target.crop_pseudo_margins = [1, 4, 1, 1]  # tiny frames
    ds_cfg.rare_class_sampling.min_pixels = 10  # tiny demo images
    uda = _build(ds_cfg)
    item = uda[0]
    assert tuple(item['inputs'].shape) == (3, crop, crop)
    assert tuple(item['target_inputs'].shape) == (3, crop, crop)
    # source labels are the dataset's train ids (all 19 + 255 at most)
    seg = item['data_samples'].gt_sem_seg.data
    assert set(seg.unique().tolist()) <= set(range(19)) | {255}
    val = _build(cfg.val_dataloader.dataset)
    gt = val[0]['data_samples'].gt_sem_seg.data
    assert set(gt.unique().tolist()) <= set(range(19)) | {255}


def test_acdc_real_config_predicts_test_server_trainids(tmp_path):
    """configs/real/mic_hrda_cs2acdc.py through tools/predict.py --format
    trainids on ACDC's (unlabelled) test images: one train-id PNG per image
    at its size. A MiT-B0-sized student at a small test scale keeps it quick;
    the pipeline, HRDA inference and writer are the config's own."""
    import sys

    import torch
    from mmengine.config import Config
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import predict
    root = str(tmp_path / 'acdc')
    made = make_acdc_demo(root)
    _tool('acdc').main([root])
    test_dir = osp.join(root, 'rgb_anon', 'test')
    images = sorted(os.listdir(test_dir))
    assert images
    small = {
        'model.segmentor.backbone.embed_dims': 32,
        'model.segmentor.backbone.num_layers': [2, 2, 2, 2],
        'model.segmentor.backbone.init_cfg': None,
        'model.segmentor.decode_head.in_channels': [32, 64, 160, 256],
        # a test scale whose half is a multiple of 8 (HRDA's context grid)
        'test_dataloader.dataset.pipeline.1.scale': (256, 144),
    }
    cfg_path = osp.join(ROOT, 'configs', 'real', 'mic_hrda_cs2acdc.py')
    cfg = Config.fromfile(cfg_path)
    cfg.merge_from_dict(small)
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = str(tmp_path / 'trainids')
    options = ['model.segmentor.backbone.embed_dims=32',
               'model.segmentor.backbone.num_layers=[2,2,2,2]',
               'model.segmentor.backbone.init_cfg=None',
               'model.segmentor.decode_head.in_channels=[32,64,160,256]',
               'test_dataloader.dataset.pipeline.1.scale=(256,144)']
    res = predict.main([cfg_path, ckpt, '--img-dir', test_dir, '--out', out,
                        '--format', 'trainids', '--no-progress',
                        '--cfg-options', *options])
    assert res['images'] == len(images)
    written = sorted(os.listdir(out))
    assert len(written) == len(images)
    for name, img in zip(written, images):
        pred = np.array(Image.open(osp.join(out, name)))
        src = Image.open(osp.join(test_dir, img))
        assert pred.shape == (src.height, src.width)
        assert set(np.unique(pred).tolist()) <= set(range(19))
    assert made  # the demo wrote its layout
