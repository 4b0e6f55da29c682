"""UDADataset: pairing, determinism, dataloader, errors, RCS end to end."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from _uda_data_fixtures import CLASSES, PALETTE, source_cfg, source_label, target_cfg

from mmplugins.datasets.uda_dataset import UDADataset


def _name(data_sample):
    return osp.basename(data_sample.img_path)


def test_item_is_source_plus_prefixed_target(demo_root):
    ds = UDADataset(source=source_cfg(demo_root),
                    target=target_cfg(demo_root), seed=0)
    assert len(ds) == 8
    assert ds.metainfo['classes'] == CLASSES
    item = ds[3]
    assert set(item) == {'inputs', 'data_samples', 'target_inputs',
                         'target_data_samples'}
    assert _name(item['data_samples']) == 'TRAIN_SOURCE_0003.png'
    np.testing.assert_array_equal(item['data_samples'].gt_sem_seg.data[0],
                                  source_label(3))
    assert item['inputs'].shape == (3, 64, 96)
    assert _name(item['target_data_samples']).startswith('TRAIN_TARGET_')
    assert 'gt_sem_seg' not in item['target_data_samples']
    assert item['target_inputs'].shape == (3, 64, 96)
    assert ds.get_cat_ids(1) == [0, 1, 3] and ds.get_cat_ids(0) == [0, 1, 2]
    assert _name(ds[-1]['data_samples']) == 'TRAIN_SOURCE_0007.png'
    with pytest.raises(IndexError):
        ds[8]


def _target_sequence(ds, order):
    return [_name(ds[i]['target_data_samples']) for i in order]


def test_target_draw_is_seeded(demo_root):
    order = list(range(8)) * 2
    mk = lambda seed: UDADataset(source=source_cfg(demo_root),  # noqa: E731
                                 target=target_cfg(demo_root), seed=seed)
    a, b, c = (_target_sequence(mk(s), order) for s in (0, 0, 1))
    assert a == b
    assert a != c
    # a revisited index gets a fresh target (2 passes over 8 items)
    per_idx = [{a[k] for k in range(i, len(a), 8)} for i in range(8)]
    assert sum(len(s) > 1 for s in per_idx) >= 4
    # all 5 targets get used
    assert len(set(a)) == 5


def _build_loader(root, sampler, num_workers, seed=0, rcs=None):
    from mmengine.runner import Runner
    return Runner.build_dataloader(
        dict(batch_size=2, num_workers=num_workers,
             persistent_workers=False,
             sampler=dict(type=sampler, shuffle=True),
             collate_fn=dict(type='pseudo_collate'),
             # mmengine defaults (serialised data lists) on purpose
             dataset=dict(type='UDADataset',
                          source=source_cfg(root, serialize_data=True),
                          target=dict(target_cfg(root), serialize_data=True),
                          rare_class_sampling=rcs)),
        seed=seed)


@pytest.mark.parametrize('sampler,num_workers', [('DefaultSampler', 0),
                                                 ('InfiniteSampler', 2)])
def test_runner_dataloader_batches_are_reproducible(demo_root, sampler,
                                                    num_workers):
    def run():
        loader = _build_loader(demo_root, sampler, num_workers)
        it = iter(loader)
        out = []
        for _ in range(4):  # 8 samples = one pass over the source
            batch = next(it)
            assert len(batch['inputs']) == 2
            assert len(batch['target_inputs']) == 2
            assert batch['target_inputs'][0].shape == (3, 64, 96)
            out += [(_name(s), _name(t)) for s, t in zip(
                batch['data_samples'], batch['target_data_samples'])]
        return out
    first, second = run(), run()
    assert first == second
    # the sampler visits every source image once per pass
    assert sorted(s for s, _ in first) == [
        f'TRAIN_SOURCE_{i:04d}.png' for i in range(8)]


def test_class_lists_must_match(demo_root):
    other = ('road', 'sky', 'tiny', 'car')
    with pytest.raises(ValueError) as e:
        UDADataset(source=source_cfg(demo_root),
                   target=target_cfg(demo_root, classes=other))
    msg = str(e.value)
    assert "'rare'" in msg and "'car'" in msg and 'differ' in msg


def test_empty_target_dir_is_named(demo_root):
    os.makedirs(osp.join(demo_root, 'empty_target'))
    with pytest.raises(ValueError, match='target dataset.*empty_target.*no '
                       'items'):
        UDADataset(source=source_cfg(demo_root),
                   target=target_cfg(demo_root, img_dir='empty_target'))


def test_ignore_index_must_match(demo_root):
    tgt = dict(target_cfg(demo_root), ignore_index=0)
    with pytest.raises(ValueError, match='ignore_index=255.*ignore_index=0'):
        UDADataset(source=source_cfg(demo_root), target=tgt)


@pytest.mark.parametrize('rcs,exc,match', [
    (dict(class_temp=0.01, min_pix=3), ValueError, r"unknown keys \['min_pix"),
    (dict(class_temp=-1), ValueError, 'temperature: -1'),
    (dict(min_pixels=10**6), ValueError, 'lower rare_class_sampling'),
])
def test_bad_rcs_config(demo_root, rcs, exc, match):
    with pytest.raises(exc, match=match):
        UDADataset(source=source_cfg(demo_root),
                   target=target_cfg(demo_root), rare_class_sampling=rcs)


def test_rcs_needs_source_labels(demo_root):
    src = dict(source_cfg(demo_root), data_prefix=dict(
        img_path='train_source_image'))
    with pytest.raises(ValueError, match='no seg_map_path'):
        UDADataset(source=src, target=target_cfg(demo_root),
                   rare_class_sampling=dict(min_pixels=10))


RCS = dict(class_temp=0.01, min_pixels=100, min_crop_ratio=0.5)


def test_rcs_oversamples_the_rare_class_images(demo_root):
    ds = UDADataset(source=source_cfg(demo_root),
                    target=target_cfg(demo_root), rare_class_sampling=RCS,
                    seed=0)
    # 'tiny' (4 px per image) has no image with >= 100 px: dropped
    assert ds.rcs.class_probs[2] == 0.0
    assert ds.rcs.classes.tolist() == [0, 1, 3]
    assert ds.rcs.class_probs[3] > 0.9  # rarest of the kept classes
    assert ds.rcs.images[3].tolist() == [1, 4]
    names = [_name(ds[0]['data_samples']) for _ in range(60)]
    rare = sum(n in ('TRAIN_SOURCE_0001.png', 'TRAIN_SOURCE_0004.png')
               for n in names)
    assert rare / 60 > 0.85  # uniform sampling would give 2/8
    # the statistics were cached next to the data
    stats = ds.get_class_stats()
    assert stats.cache_file.startswith(osp.join(demo_root, '.mmplugins_'))


def _crop_hit_rate(root, max_retries, n=80):
    np.random.seed(0)  # mmseg RandomCrop draws from the global RNG
    ds = UDADataset(source=source_cfg(root, crop=(24, 24)),
                    target=target_cfg(root),
                    rare_class_sampling=dict(RCS, max_retries=max_retries),
                    seed=0)
    hits, attempts = [], []
    for _ in range(n):
        item = ds[0]
        info = ds.last_rcs
        gt = item['data_samples'].gt_sem_seg.data
        assert gt.shape[-2:] == (24, 24)
        assert info['class_pixels'] == int((gt == info['rcs_class']).sum())
        if info['rcs_class'] == 3:
            hits.append(info['class_pixels'] > 50)
            attempts.append(info['attempts'])
    return np.mean(hits), attempts


def test_rcs_recrops_until_the_rare_class_is_in_the_crop(demo_root):
    # the 16x16 rare square in a 64x96 map: a random 24x24 crop holds
    # > 50 px of it only ~8% of the time
    no_retry, att0 = _crop_hit_rate(demo_root, max_retries=0)
    retry, att10 = _crop_hit_rate(demo_root, max_retries=10)
    assert set(att0) == {1}
    assert max(att10) > 1 and max(att10) <= 11
    assert no_retry < 0.3
    assert retry > 0.5 and retry > no_retry + 0.3


def test_rcs_class_that_never_occurs(tmp_path):
    from _uda_data_fixtures import write_split
    root = str(tmp_path / 'd5')
    write_split(root, 'train_source', 6)
    write_split(root, 'train_target', 2)
    classes = CLASSES + ('bus', )   # never in any label
    palette = PALETTE + [[0, 60, 100]]
    src = dict(source_cfg(root), metainfo=dict(classes=classes,
                                               palette=palette))
    tgt = dict(target_cfg(root), metainfo=dict(classes=classes,
                                               palette=palette))
    ds = UDADataset(source=src, target=tgt, rare_class_sampling=RCS, seed=0)
    assert ds.rcs.class_probs[4] == 0.0
    assert np.isfinite(ds.rcs.probs).all()
    assert sum(ds.rcs.class_probs.values()) == pytest.approx(1.0)
    for _ in range(20):
        ds[0]
        assert ds.last_rcs['rcs_class'] != 4


def test_stale_stats_after_data_change_are_recomputed(demo_root):
    ds = UDADataset(source=source_cfg(demo_root),
                    target=target_cfg(demo_root), rare_class_sampling=RCS)
    assert ds.get_class_stats().status in ('computed', 'loaded')
    assert ds.rcs.images[3].tolist() == [1, 4]
    # the rare class appears in image 6 too
    path = osp.join(demo_root, 'train_source_gt', 'TRAIN_SOURCE_0006.png')
    label = source_label(6)
    label[40:60, 0:20] = 3
    cv2.imwrite(path, label)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ds2 = UDADataset(source=source_cfg(demo_root),
                     target=target_cfg(demo_root), rare_class_sampling=RCS)
    assert ds2.get_class_stats().status == 'stale'
    assert ds2.rcs.images[3].tolist() == [1, 4, 6]
    assert ds2.get_class_stats().counts[6, 3] == 400
