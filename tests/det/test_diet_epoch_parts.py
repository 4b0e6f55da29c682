"""epoch_parts sampling: lengths, rank coverage (simulated world sizes),
determinism, epochs, infinite mode and resume."""
import itertools
import os.path as osp

import pytest
from _diet_fixtures import REFERENCE_RULES, REFERENCE_SUBSET, load_cfg

import mmplugins  # noqa: F401
from mmplugins.datasets.samplers import epoch_parts_sampler as eps_module
from mmplugins.datasets.samplers.epoch_parts_sampler import (
    EpochPartsSampler, epoch_draw)


class Sized:

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def make_rank_samplers(monkeypatch, world_size, cls=EpochPartsSampler,
                       **kwargs):
    """One sampler per simulated rank: the constructor reads the rank from
    mmengine.dist.get_dist_info, as in a real DDP process."""
    samplers = []
    for rank in range(world_size):
        monkeypatch.setattr(eps_module, 'get_dist_info',
                            lambda r=rank: (r, world_size))
        samplers.append(cls(**kwargs))
    monkeypatch.undo()
    return samplers


@pytest.mark.parametrize('world_size', [1, 2, 3])
@pytest.mark.parametrize('replacement', [False, True])
def test_rank_split_disjoint_complete_equal(monkeypatch, world_size,
                                            replacement):
    n, parts, seed = 101, 4, 7
    samplers = make_rank_samplers(monkeypatch, world_size,
                                  dataset=Sized(n), epoch_parts=parts,
                                  replacement=replacement, seed=seed)
    per_rank = (n // parts) // world_size          # 25 // ws
    for epoch in range(6):
        shares = []
        for s in samplers:
            s.set_epoch(epoch)
            shares.append(list(s))
        assert [len(x) for x in shares] == [per_rank] * world_size
        assert all(len(s) == per_rank for s in samplers)
        draw = epoch_draw(n, parts, epoch, seed, replacement)
        # ranks read disjoint positions of the epoch draw and together
        # all of it (but the < world_size tail of the draw)
        merged = [shares[p % world_size][p // world_size]
                  for p in range(per_rank * world_size)]
        assert merged == draw[:per_rank * world_size].tolist()
        if not replacement:
            flat = list(itertools.chain(*shares))
            assert len(set(flat)) == len(flat)


def test_no_replacement_cycle_covers_pool():
    n, parts = 103, 4
    s = EpochPartsSampler(Sized(n), epoch_parts=parts, seed=3)
    seen = []
    for epoch in range(parts):
        s.set_epoch(epoch)
        seen += list(s)
    # one cycle: each item at most once; all but n % parts seen
    assert len(seen) == len(set(seen)) == n - n % parts
    # next cycle is a fresh permutation, not a repeat
    s.set_epoch(parts)
    first_next = list(s)
    s.set_epoch(0)
    assert first_next != list(s)


def test_replacement_draws_with_repeats():
    s = EpochPartsSampler(Sized(20), epoch_parts=1, replacement=True, seed=0)
    draws = list(s)
    assert len(draws) == 20 and len(set(draws)) < 20   # repeats happen
    with pytest.raises(ValueError, match='needs shuffle=True'):
        EpochPartsSampler(Sized(20), replacement=True, shuffle=False)


def test_determinism_per_seed_and_change_per_epoch():
    a = EpochPartsSampler(Sized(500), epoch_parts=5, seed=11)
    b = EpochPartsSampler(Sized(500), epoch_parts=5, seed=11)
    c = EpochPartsSampler(Sized(500), epoch_parts=5, seed=12)
    per_epoch = []
    for epoch in range(3):
        for s in (a, b, c):
            s.set_epoch(epoch)
        assert list(a) == list(b)
        assert list(a) != list(c)
        assert list(a) == list(a)       # set_epoch, not iteration, moves on
        per_epoch.append(list(a))
    assert per_epoch[0] != per_epoch[1] != per_epoch[2]


def test_diet_sampler_epoch_parts(monkeypatch, reference_dataset):
    from mmplugins.datasets.samplers.diet_sampler import DietSampler
    for ws in (1, 2, 3):
        samplers = make_rank_samplers(
            monkeypatch, ws, cls=DietSampler, dataset=reference_dataset,
            rules=REFERENCE_RULES, epoch_parts=2, seed=0, verbose=False)
        # subset of 8 -> 4 per epoch -> 4 // ws per rank
        assert [len(s) for s in samplers] == [4 // ws] * ws
        for epoch in range(4):
            shares = []
            for s in samplers:
                s.set_epoch(epoch)
                shares += list(s)
            assert len(shares) == len(set(shares)) == (4 // ws) * ws
            assert set(shares) <= set(REFERENCE_SUBSET)
    with pytest.raises(ValueError, match='fewer than world_size=3'):
        make_rank_samplers(monkeypatch, 3, cls=DietSampler,
                           dataset=reference_dataset, rules=REFERENCE_RULES,
                           epoch_parts=4, seed=0, verbose=False)


def test_infinite_stream_and_resume():
    s = EpochPartsSampler(Sized(30), epoch_parts=3, infinite=True, seed=5)
    assert len(s) == 10
    stream = list(itertools.islice(iter(s), 45))
    epochs = []
    for e in range(5):
        finite = EpochPartsSampler(Sized(30), epoch_parts=3, seed=5)
        finite.set_epoch(e)
        epochs += list(finite)
    assert stream == epochs[:45]
    # IterBasedTrainLoop resume: a fresh sampler advanced by the consumed
    # count yields exactly what the interrupted stream would have
    resumed = EpochPartsSampler(Sized(30), epoch_parts=3, infinite=True,
                                seed=5)
    it = iter(resumed)
    for _ in range(17):
        next(it)
    assert list(itertools.islice(it, 28)) == stream[17:45]


def test_indices_restrict_pool_and_errors():
    s = EpochPartsSampler(Sized(10), indices=[1, 3, 5, 7], seed=0)
    assert sorted(s) == [1, 3, 5, 7]
    with pytest.raises(ValueError, match=r'indices must lie in \[0, 10\)'):
        EpochPartsSampler(Sized(10), indices=[3, 12])
    with pytest.raises(ValueError, match='epoch_parts=5 is larger than the '
                       r'dataset \(Sized\) \(4 items\)'):
        EpochPartsSampler(Sized(4), epoch_parts=5)
    with pytest.raises(ValueError, match='epoch_parts must be >= 1, got '
                       'epoch_parts=0'):
        EpochPartsSampler(Sized(4), epoch_parts=0)
    with pytest.raises(ValueError, match='is empty'):
        EpochPartsSampler(Sized(0))


def test_runner_resume_continues_epoch_draw(tmp_path, driver_demo_small):
    """Through the real Runner: after resuming, epoch-based training reads
    the resumed epochs' draws, iteration-based (infinite=True) training the
    rest of the stream, exactly as an uninterrupted run would."""
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS
    from mmengine.runner import Runner
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)

    @HOOKS.register_module(force=True)
    class RecordImagesHook(Hook):
        seen = []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            RecordImagesHook.seen.append(
                (runner.epoch, runner.iter,
                 [d.img_path for d in data_batch['data_samples']]))

    def run(work_dir, iter_based, max_n, ckpt_at=None, resume_from=None):
        cfg = load_cfg('configs/diet_det/stage1_diet.py')
        cfg.work_dir = str(work_dir)
        cfg.train_dataloader.update(batch_size=2, num_workers=0,
                                    persistent_workers=False)
        cfg.train_dataloader.dataset.data_root = \
            driver_demo_small['data_root']
        cfg.train_dataloader.sampler.update(epoch_parts=3, verbose=False,
                                            infinite=iter_based)
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
        cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
        cfg.custom_hooks = [dict(type='RecordImagesHook')]
        cfg.visualizer.name = f'vis_{osp.basename(work_dir)}'
        # a narrow RTMDet: this test is about the data order
        cfg.model.backbone.update(widen_factor=0.125)
        cfg.model.neck.update(in_channels=[32, 64, 128], out_channels=16)
        cfg.model.bbox_head.update(in_channels=16, feat_channels=16)
        cfg.default_hooks.checkpoint = dict(
            type='CheckpointHook', interval=ckpt_at or 10**6,
            by_epoch=not iter_based, save_last=False)
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0,
                                    by_epoch=not iter_based)]
        if iter_based:
            cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_n,
                                 val_interval=10**6)
        else:
            cfg.train_cfg = dict(type='EpochBasedTrainLoop',
                                 max_epochs=max_n)
        if resume_from:
            cfg.resume, cfg.load_from = True, resume_from
        RecordImagesHook.seen = []
        runner = Runner.from_cfg(cfg)
        runner.train()
        loader = runner.train_dataloader
        return RecordImagesHook.seen, loader.sampler, loader.dataset

    def names(indices, dataset):
        return [dataset.get_data_info(int(i))['img_path'] for i in indices]

    # epoch-based: 1 epoch + checkpoint, then resume up to 3 epochs
    first, sampler, dataset = run(tmp_path / 'a', False, 1, ckpt_at=1)
    resumed, _, _ = run(tmp_path / 'b', False, 3,
                        resume_from=str(tmp_path / 'a' / 'epoch_1.pth'))
    draws = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        draws.append(names(list(sampler), dataset))
    assert draws[0] != draws[1] != draws[2]
    assert sum((n for _, _, n in first), []) == draws[0]
    per_epoch = -(-len(draws[0]) // 2)                  # batches of 2
    assert [e for e, _, _ in resumed] == [1] * per_epoch + [2] * per_epoch
    assert sum((n for _, _, n in resumed), []) == draws[1] + draws[2]

    # iteration-based, infinite stream: 2 iterations + checkpoint, resume
    # to 5 iterations (10 images: more than one epoch draw)
    first, sampler, dataset = run(tmp_path / 'c', True, 2, ckpt_at=2)
    resumed, _, _ = run(tmp_path / 'd', True, 5,
                        resume_from=str(tmp_path / 'c' / 'iter_2.pth'))
    stream = names(itertools.islice(iter(sampler), 10), dataset)
    assert sum((n for _, _, n in first), []) == stream[:4]
    assert [i for _, i, _ in resumed] == [2, 3, 4]
    assert sum((n for _, _, n in resumed), []) == stream[4:10]
    assert len(sampler) == len(draws[0]) < 10   # crossed an epoch boundary
