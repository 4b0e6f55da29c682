"""Diet with mosaic: every image of every mosaic comes from the sampler's
pool (SubsetMixDataset), through mmyolo's real dataset, Mosaic, collate and a
loader with persistent workers; and DietSampler's rank / set_epoch contract
under mmyolo's dataloader."""
import glob
import os
import os.path as osp

import numpy as np
import pytest

pytest.importorskip('mmyolo', reason='mmyolo is installed by `make install`')

from _diet_fixtures import (CLASSES, REFERENCE_RULES,  # noqa: E402
                            diet_names)

from mmengine.registry import TRANSFORMS  # noqa: E402


@TRANSFORMS.register_module(name='_RecordImgPathForTest', force=True)
class RecordImgPath:
    """Appends ``<tag> <img_path>`` to ``<out_dir>/<pid>.txt`` (one file per
    loader worker: the workers are separate processes)."""

    def __init__(self, out_dir, tag):
        self.out_dir, self.tag = out_dir, tag

    def __call__(self, results):
        with open(osp.join(self.out_dir, f'{os.getpid()}.txt'), 'a') as f:
            f.write(f'{self.tag} {osp.basename(results["img_path"])}\n')
        return results


def loader_cfg(root, rec_dir, wrap, partners='subset', workers=2,
               epoch_parts=2, batch_size=4):
    pre = [dict(type='LoadImageFromFile'),
           dict(type='LoadAnnotations', with_bbox=True)]
    pipeline = [
        *pre,
        dict(type='_RecordImgPathForTest', out_dir=rec_dir, tag='main'),
        dict(type='Mosaic', img_scale=(96, 96), pad_val=114.0,
             pre_transform=[*pre, dict(type='_RecordImgPathForTest',
                                       out_dir=rec_dir, tag='partner')]),
        dict(type='mmdet.PackDetInputs'),
    ]
    dataset = dict(
        type='YOLOv5CocoDataset', data_root=root,
        metainfo=dict(classes=CLASSES),
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=pipeline)
    if wrap:
        dataset = dict(type='SubsetMixDataset', partners=partners,
                       dataset=dataset)
    return dict(
        batch_size=batch_size, num_workers=workers,
        persistent_workers=workers > 0,
        sampler=dict(type='DietSampler', rules=REFERENCE_RULES,
                     epoch_parts=epoch_parts, verbose=False),
        collate_fn=dict(type='yolov5_collate'),
        dataset=dataset)


def build_loader(cfg):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmplugins  # noqa: F401
    from mmplugins.utils.mmyolo_check import require_mmyolo
    require_mmyolo()
    import mmyolo.utils
    mmyolo.utils.register_all_modules(init_default_scope=False)
    init_default_scope('mmyolo')
    return Runner.build_dataloader(cfg, seed=0)


def read_records(rec_dir):
    """(main names, partner names) written since the last call."""
    main, partner = [], []
    for path in glob.glob(osp.join(rec_dir, '*.txt')):
        for line in open(path).read().splitlines():
            tag, name = line.split()
            (main if tag == 'main' else partner).append(name)
        os.remove(path)
    return main, partner


def run_epochs(loader, rec_dir, epochs):
    out = []
    dataset = loader.dataset
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        for _ in loader:
            pass
        main, partner = read_records(rec_dir)
        # the sampler's draw of this epoch (one rank: all of it)
        drawn = [osp.basename(dataset.get_data_info(i)['img_path'])
                 for i in loader.sampler.indices_of_epoch(epoch)]
        out.append((main, partner, drawn))
    return out


@pytest.mark.parametrize('partners', ['subset', 'epoch'])
def test_every_mosaic_image_in_the_diet(tmp_path, driver_demo_small,
                                        partners):
    root = driver_demo_small['data_root']
    rec = str(tmp_path)
    loader = build_loader(loader_cfg(root, rec, wrap=True,
                                     partners=partners))
    diet = diet_names(root)
    sampler = loader.sampler
    assert {osp.basename(loader.dataset.get_data_info(i)['img_path'])
            for i in sampler.pool} == diet
    epochs = run_epochs(loader, rec, [0, 1, 2])
    for epoch, (main, partner, drawn) in enumerate(epochs):
        # the sampler's images were loaded, each once, 3 partners each
        assert sorted(main) == sorted(drawn), epoch
        assert len(partner) == 3 * len(main)
        assert set(main) <= diet
        assert set(partner) <= diet, (epoch, set(partner) - diet)
        if partners == 'epoch':
            # only this epoch's part (all ranks) of the diet
            assert set(partner) <= set(drawn), (epoch,
                                                set(partner) - set(drawn))
    if partners == 'epoch':
        # the parts differ between epochs: a fixed pool would not do
        assert set(epochs[0][2]) != set(epochs[1][2])
    else:
        # the whole subset is the partner pool, not just the epoch's part
        assert all(set(p) - set(d) for _, p, d in epochs)
    # persistent workers kept the same processes across the epochs
    assert loader.persistent_workers and loader._iterator is not None


def test_stock_mosaic_leaves_the_diet(tmp_path, driver_demo_small):
    """The problem the wrapper solves: mmyolo's dataset hands Mosaic the
    whole dataset, so partners fall outside the diet."""
    root = driver_demo_small['data_root']
    loader = build_loader(loader_cfg(root, str(tmp_path), wrap=False,
                                     workers=0))
    diet = diet_names(root)
    (main, partner, drawn), = run_epochs(loader, str(tmp_path), [0])
    assert sorted(main) == sorted(drawn) and set(main) <= diet
    assert set(partner) - diet


@pytest.mark.parametrize('world_size', [2, 3])
def test_rank_shares_under_mmyolo_loader(monkeypatch, tmp_path,
                                         driver_demo_small, world_size):
    """Simulated ranks, each with mmyolo's loader (yolov5_collate, the
    wrapper): equal, disjoint shares that together are the epoch's draw,
    a new draw after set_epoch, and the loader yields exactly its share."""
    from mmplugins.datasets.samplers import epoch_parts_sampler as eps
    from mmplugins.datasets.samplers.epoch_parts_sampler import epoch_draw
    root = driver_demo_small['data_root']
    loaders = []
    for rank in range(world_size):
        monkeypatch.setattr(eps, 'get_dist_info',
                            lambda r=rank: (r, world_size))
        cfg = loader_cfg(root, str(tmp_path), wrap=True, workers=0,
                         epoch_parts=1, batch_size=2)
        loaders.append(build_loader(cfg))
    monkeypatch.undo()
    pool = loaders[0].sampler.pool
    seed = loaders[0].sampler.seed
    per_rank = len(pool) // world_size
    draws = []
    for epoch in (0, 1):
        shares = []
        for loader in loaders:
            loader.sampler.set_epoch(epoch)
            n_batches = sum(1 for _ in loader)
            seen, _ = read_records(str(tmp_path))  # in loading order
            share = list(loader.sampler)
            assert len(share) == per_rank == len(loader.sampler)
            names = [osp.basename(loader.dataset.get_data_info(i)['img_path'])
                     for i in share]
            assert seen == names  # the loader loads the sampler's share
            assert n_batches == -(-per_rank // 2)
            shares.append(share)
        flat = sum(shares, [])
        assert len(set(flat)) == len(flat)  # disjoint
        draw = pool[epoch_draw(len(pool), 1, epoch, seed)]
        merged = [shares[p % world_size][p // world_size]
                  for p in range(per_rank * world_size)]
        assert merged == draw[:per_rank * world_size].tolist()
        draws.append(merged)
    assert draws[0] != draws[1]  # set_epoch selects a new draw


def test_epoch_index_pickles_and_spec_pool():
    import pickle

    from mmplugins.datasets.samplers.epoch_parts_sampler import (DrawSpec,
                                                                 epoch_draw)
    from mmplugins.datasets.subset_mix_dataset import EpochIndex
    i = pickle.loads(pickle.dumps(EpochIndex(7, 3)))
    assert i == 7 and i.epoch == 3 and [0, 1, 2, 3, 4, 5, 6, 7][i] == 7
    pool = np.array([3, 8, 10, 11, 20, 21, 30])
    spec = DrawSpec(pool, 2, 5, False, True, 2)
    # by hand: part e % 2 of the cycle's permutation, the odd tail dropped
    draw = epoch_draw(7, 2, 1, 5)
    assert spec.epoch_pool(1).tolist() == sorted(pool[draw[:2]].tolist())


def test_bad_partners_and_unknown_category(driver_demo_small, tmp_path):
    from mmplugins.datasets.subset_mix_dataset import SubsetMixDataset
    with pytest.raises(ValueError, match="partners must be one of .*'all'"):
        SubsetMixDataset(dataset=dict(type='X'), partners='all')
    cfg = loader_cfg(driver_demo_small['data_root'], str(tmp_path),
                     wrap=True, workers=0)
    cfg['sampler']['rules'] = [dict(any_of=['cellphone'])]
    with pytest.raises(KeyError, match=r"\['cellphone'\] that the dataset"):
        build_loader(cfg)


def test_check_data_under_mmyolo(driver_demo_small, repo_root):
    """tools/check_data.py on the YOLOv5 stage-1 config (mmyolo scope, the
    wrapper unwrapped): detection checks, every image read."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_check_data_tool', osp.join(repo_root, 'tools', 'check_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    from _toolbox import load_config, setup_toolbox
    root = driver_demo_small['data_root']
    cfg = load_config(
        osp.join(repo_root, 'configs/diet_det/yolov5_n_stage1_diet.py'),
        {'train_dataloader.dataset.dataset.data_root': root,
         'val_dataloader.dataset.data_root': root,
         'test_dataloader.dataset.data_root': root})
    assert setup_toolbox(cfg) == 'mmyolo'
    reports = tool.run(cfg, splits=('train', 'val'))
    assert [(r['name'], r['kind'], r['items'], r['problems'])
            for r in reports] == [('train', 'det', 48, []),
                                  ('val', 'det', 8, [])]
