"""Rare class sampling retries only the crop (issue #15).

The source pipeline is split at its RandomCrop: the transforms before it
run once per item, the crop is retried, the transforms after it run once.
"""
import numpy as np
import pytest
from _uda_data_fixtures import source_cfg, target_cfg

from mmplugins.datasets.crop_split import CropSplitPipeline
from mmplugins.datasets.uda_dataset import UDADataset

RCS = dict(class_temp=0.01, min_pixels=100, min_crop_ratio=0.5)
CROP = (24, 24)


class Recorder:
    """Pipeline step that counts its calls and passes results through."""

    def __init__(self):
        self.calls = 0

    def __call__(self, results):
        self.calls += 1
        return results


class CountingCrop:
    """Wraps the pipeline's crop to count how often it runs."""

    def __init__(self, crop):
        self.crop, self.calls = crop, 0

    def __call__(self, results):
        self.calls += 1
        return self.crop(results)


def _instrumented(root, retry='crop', max_retries=10, pipeline=None):
    """A UDADataset whose source pipeline counts pre-crop, crop and
    post-crop runs. Returns (dataset, pre, crop, post)."""
    ds = UDADataset(source=source_cfg(root, crop=CROP, pipeline=pipeline),
                    target=target_cfg(root),
                    rare_class_sampling=dict(RCS, retry=retry,
                                             max_retries=max_retries),
                    seed=0)
    ts = ds.source.pipeline.transforms
    i = next(k for k, t in enumerate(ts)
             if type(t).__name__ == 'RandomCrop')
    pre, post, crop = Recorder(), Recorder(), CountingCrop(ts[i])
    ts[i:i + 1] = [pre, crop, post]
    if ds.rcs_split is not None:  # rebuild the split on the new list
        ds.rcs_split = CropSplitPipeline(ds.source, i + 1)
    return ds, pre, crop, post


def _split(root, pipeline):
    """The crop split UDADataset builds for a source ``pipeline``."""
    return UDADataset(source=source_cfg(root, pipeline=pipeline),
                      target=target_cfg(root), rare_class_sampling=RCS,
                      seed=0).rcs_split


def test_split_is_found_at_the_random_crop(demo_root):
    ds = UDADataset(source=source_cfg(demo_root, crop=CROP),
                    target=target_cfg(demo_root), rare_class_sampling=RCS,
                    seed=0)
    split = ds.rcs_split
    assert split is not None
    assert [type(t).__name__ for t in split.pre] == [
        'LoadImageFromFile', 'LoadAnnotations']
    assert type(split.crop_transform).__name__ == 'RandomCrop'
    assert [type(t).__name__ for t in split.post] == ['PackSegInputs']


def test_post_crop_transforms_run_once_while_the_crop_is_retried(demo_root):
    np.random.seed(0)
    ds, pre, crop, post = _instrumented(demo_root)
    attempts = []
    for n in range(1, 41):
        ds[0]
        info = ds.last_rcs
        attempts.append(info['attempts'])
        # one load and one finish per item, however many crops were tried
        assert (pre.calls, post.calls) == (n, n)
        assert info['pipeline_runs'] == 1
        assert crop.calls == sum(attempts)
    # the 16x16 rare square in 24x24 crops of 64x96: retries do happen
    assert max(attempts) > 1
    assert crop.calls > 40


def test_whole_pipeline_retry_reruns_everything(demo_root):
    np.random.seed(0)
    ds, pre, crop, post = _instrumented(demo_root, retry='pipeline')
    assert ds.rcs_split is None
    total = 0
    for _ in range(40):
        ds[0]
        total += ds.last_rcs['attempts']
    assert pre.calls == crop.calls == post.calls == total > 40


def test_accepted_crop_satisfies_the_rule(demo_root):
    np.random.seed(1)
    ds, _, _, _ = _instrumented(demo_root)
    thr = ds.rcs.crop_threshold
    assert thr == 50
    accepted = 0
    for _ in range(60):
        item = ds[0]
        info = ds.last_rcs
        gt = item['data_samples'].gt_sem_seg.data
        assert gt.shape[-2:] == CROP
        assert info['class_pixels'] == int((gt == info['rcs_class']).sum())
        if info['attempts'] <= ds.rcs.max_retries:
            # stopped early: only because the crop passed the test
            assert info['class_pixels'] > thr
            accepted += 1
        else:  # gave up after 1 + max_retries crops: the last one is kept
            assert info['attempts'] == ds.rcs.max_retries + 1
        if info['attempts'] > 1:
            # every earlier crop failed, else it would have stopped there
            assert info['rcs_class'] in ds.rcs.classes
    assert accepted > 40


def _items(root, retry, seed, n=15):
    np.random.seed(seed)
    ds = UDADataset(source=source_cfg(root, crop=CROP),
                    target=target_cfg(root),
                    rare_class_sampling=dict(RCS, retry=retry), seed=seed)
    out = []
    for _ in range(n):
        item = ds[0]
        out.append((item['inputs'].numpy().copy(),
                    item['data_samples'].gt_sem_seg.data.numpy().copy(),
                    ds.last_rcs['attempts']))
    return out


@pytest.mark.parametrize('retry', ['crop', 'pipeline'])
def test_seeded_items_are_reproducible(demo_root, retry):
    a, b = _items(demo_root, retry, 3), _items(demo_root, retry, 3)
    for (ia, ga, na), (ib, gb, nb) in zip(a, b):
        assert na == nb
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ga, gb)
    c = _items(demo_root, retry, 4)
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, c))


def _hit_stats(root, retry, n=150):
    np.random.seed(7)
    ds = UDADataset(source=source_cfg(root, crop=CROP),
                    target=target_cfg(root),
                    rare_class_sampling=dict(RCS, retry=retry), seed=7)
    pixels, attempts = [], []
    for _ in range(n):
        ds[0]
        if ds.last_rcs['rcs_class'] == 3:
            pixels.append(ds.last_rcs['class_pixels'])
            attempts.append(ds.last_rcs['attempts'])
    return np.asarray(pixels), np.asarray(attempts)


def test_crop_retry_keeps_the_distribution_of_the_accepted_crop(demo_root):
    # same i.i.d. crops of the same resized image, same stopping rule: the
    # accepted crop's rare-class pixel count and the number of crops tried
    # have the same distribution (different random streams, so compare
    # statistics)
    p_crop, a_crop = _hit_stats(demo_root, 'crop')
    p_pipe, a_pipe = _hit_stats(demo_root, 'pipeline')
    assert len(p_crop) > 100 and len(p_pipe) > 100
    hit_crop, hit_pipe = (p_crop > 50).mean(), (p_pipe > 50).mean()
    assert hit_crop > 0.7 and abs(hit_crop - hit_pipe) < 0.12
    assert abs(a_crop.mean() - a_pipe.mean()) < 1.5
    assert abs(np.median(p_crop) - np.median(p_pipe)) <= 64


def test_pipeline_without_crop_falls_back_to_whole_pipeline(demo_root,
                                                            monkeypatch):
    import mmplugins.datasets.uda_dataset as module
    logged = []
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    ds = UDADataset(source=source_cfg(demo_root),  # no RandomCrop
                    target=target_cfg(demo_root), rare_class_sampling=RCS,
                    seed=0)
    assert ds.rcs_split is None
    assert any('re-crops re-run the whole pipeline' in m for m in logged)
    ds[0]
    assert 'pipeline_runs' not in ds.last_rcs  # RareClassSampler.draw


def test_two_crops_fall_back(demo_root):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='RandomCrop', crop_size=(48, 48)),
                dict(type='RandomCrop', crop_size=CROP),
                dict(type='PackSegInputs')]
    assert _split(demo_root, pipeline) is None


def test_random_transform_before_the_crop_falls_back(demo_root):
    # a random pre-crop transform is re-drawn per retry by the reference's
    # whole-pipeline loop; drawn once it would change the accepted crops
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='RandomResize', scale=(64, 64),
                     ratio_range=(0.5, 2.0), keep_ratio=True),
                dict(type='RandomCrop', crop_size=CROP),
                dict(type='PackSegInputs')]
    assert _split(demo_root, pipeline) is None
    # a fixed-scale Resize before it is deterministic: split
    pipeline[2] = dict(type='Resize', scale=(64, 64), keep_ratio=True)
    assert _split(demo_root, pipeline) is not None


def test_bad_retry_value_names_the_key(demo_root):
    with pytest.raises(ValueError, match=r"retry=.*'crops'"):
        UDADataset(source=source_cfg(demo_root, crop=CROP),
                   target=target_cfg(demo_root),
                   rare_class_sampling=dict(RCS, retry='crops'))


def test_rejected_sample_uses_the_dataset_refetch(demo_root):
    ds, _, crop, _ = _instrumented(demo_root)
    fetched = []
    ds.rcs_split.finish = lambda results: None  # a transform rejects it
    original = ds.source.__getitem__

    def fetch(i):
        fetched.append(i)
        return original(i)
    ds.source.__getitem__ = fetch  # instance attribute: what UDADataset uses
    item = ds[0]
    assert fetched == [ds.last_rcs['index']]
    assert 'inputs' in item

