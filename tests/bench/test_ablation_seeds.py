"""``--seeds`` of bench/diet_ablation.py and bench/mask_cls_ablation.py:
argument checks, one work dir per seed, and the mean ± std aggregation
(unit level: no training)."""
import os.path as osp
import statistics
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'bench'))

import _common  # noqa: E402
import diet_ablation  # noqa: E402
import mask_cls_ablation  # noqa: E402

PARSERS = [(diet_ablation.parse_args, 'diet_ablation'),
           (mask_cls_ablation.parse_args, 'mask_cls_ablation')]


@pytest.mark.parametrize('parse,prog', PARSERS)
def test_seeds_arguments(parse, prog):
    assert parse(['--seeds', '0', '1', '2']).seeds == [0, 1, 2]
    assert parse(['--seeds', '2', '0']).seeds == [2, 0]  # order kept
    assert parse(['--seed', '5']).seeds == [5]
    assert parse([]).seeds == [0]
    with pytest.raises(SystemExit, match=f'{prog}: --seeds needs at least'):
        parse(['--seeds'])
    with pytest.raises(SystemExit,
                       match=rf'{prog}: --seeds repeats \[1\]'):
        parse(['--seeds', '0', '1', '1'])


def test_mean_std_and_format():
    s = _common.mean_std([1, 2, 6])
    assert s['values'] == [1.0, 2.0, 6.0] and s['mean'] == 3.0
    assert s['std'] == pytest.approx(statistics.stdev([1, 2, 6]))  # n-1
    assert _common.fmt_pm(s) == '3.00 ± 2.65'
    assert _common.fmt_pm(_common.mean_std([-0.25]), 1,
                          signed=True) == '-0.2'  # one seed: no std
    one = _common.mean_std([4])
    assert one['std'] is None and _common.fmt_pm(one, 1) == '4.0'
    with pytest.raises(ValueError, match='at least one'):
        _common.mean_std([])


def test_one_work_dir_per_seed():
    dirs = {diet_ablation.seed_work_dir('w', s) for s in (0, 1, 2)}
    assert dirs == {osp.join('w', f'seed{s}') for s in (0, 1, 2)}
    cfg = mask_cls_ablation.RUNS[0][2]
    a = mask_cls_ablation.run_dir('w', 0, cfg)
    b = mask_cls_ablation.run_dir('w', 1, cfg)
    assert a != b and a == osp.join('w', 'seed0',
                                    osp.splitext(osp.basename(cfg))[0])


def _diet_seed(seed, full, diet, ens):
    """A single-seed diet result with mean AP ``full``/``diet``/``ens``
    (fractions) and one class 'face' at twice those."""
    ap = {arm: {'face': dict(ap=2 * v, ap50=0.5),
                'mean': dict(ap=v, ap50=0.25)}
          for arm, v in (('full', full), ('diet_ft', diet),
                         ('ensemble', ens))}
    return dict(classes=['face'], ap=ap, setup=dict(seed=seed))


def test_diet_summary_numbers():
    runs = [_diet_seed(2, 0.30, 0.36, 0.31), _diet_seed(0, 0.20, 0.30, 0.25),
            _diet_seed(1, 0.25, 0.40, 0.30)]
    s = diet_ablation.summarise(runs)
    assert s['seeds'] == [0, 1, 2]  # seed order, whatever the input order
    assert s['arms'] == ['full', 'diet_ft', 'ensemble']
    assert s['ap']['full']['mean']['ap']['values'] == pytest.approx(
        [20, 25, 30])
    assert s['ap']['full']['mean']['ap']['mean'] == pytest.approx(25)
    assert s['ap']['full']['mean']['ap']['std'] == pytest.approx(5)
    assert s['ap']['diet_ft']['face']['ap']['mean'] == pytest.approx(
        2 * (30 + 40 + 36) / 3)
    d = s['delta']['diet_ft - full']
    assert d['values'] == pytest.approx([10, 15, 6])
    assert d['mean'] == pytest.approx(31 / 3)
    assert d['std'] == pytest.approx(statistics.stdev([10, 15, 6]))
    assert s['delta']['ensemble - full']['values'] == pytest.approx(
        [5, 5, 1])
    md = diet_ablation.summary_markdown(s)
    assert '| mean | 25.0 ± 5.0 | 35.3 ± 5.0 |' in md
    assert 'diet_ft - full: +10.3 ± 4.5 (per seed +10.0, +15.0, +6.0)' in md
    # an arm missing in one seed is left out of the summary
    del runs[0]['ap']['ensemble']
    assert diet_ablation.summarise(runs)['arms'] == ['full', 'diet_ft']
    with pytest.raises(ValueError, match='at least one'):
        diet_ablation.summarise([])


def test_mask_cls_summary_numbers():
    runs = []
    for seed, f1 in ((1, 30.0), (0, 20.0)):
        for i, (head, sampler, config) in enumerate(mask_cls_ablation.RUNS):
            metrics = {k: f1 + i for k in mask_cls_ablation.KEYS}
            runs.append(dict(head=head, sampler=sampler, config=config,
                             seed=seed, metrics=metrics, wall_s=10.0 * i))
    summary = mask_cls_ablation.summarise(runs)
    assert [(r['head'], r['sampler']) for r in summary] == [
        r[:2] for r in mask_cls_ablation.RUNS]
    first = summary[0]
    assert first['seeds'] == [0, 1]
    assert first['metrics']['joint_f1']['values'] == [20.0, 30.0]
    assert first['metrics']['joint_f1']['mean'] == 25.0
    assert first['metrics']['joint_f1']['std'] == pytest.approx(
        statistics.stdev([20, 30]))
    assert summary[3]['metrics']['age_f1']['mean'] == 28.0
    md = mask_cls_ablation.to_markdown(dict(
        summary=summary, setup=dict(
            persons=3, img_size=32, data_seed=0, train_images=1,
            val_images=1, epochs=1, seeds=[0, 1], machine='m',
            command='c')))
    assert ('| 18-way LinearClsHead | DefaultSampler | 25.00 ± 7.07 | '
            '20.00 / 30.00 |') in md
    # a legacy one-seed file (runs without 'seed') still summarises
    legacy = [dict(r, seed=None) for r in runs if r['seed'] == 0]
    for r in legacy:
        del r['seed']
    assert mask_cls_ablation.summarise(legacy)[0]['seeds'] == [0]


def _cls_runs(table):
    """Runs from ``{seed: [joint_f1 of every RUNS row]}``."""
    return [dict(head=h, sampler=s, config=c, seed=seed,
                 metrics={k: f1s[i] for k in mask_cls_ablation.KEYS},
                 wall_s=1.0)
            for seed, f1s in table.items()
            for i, (h, s, c) in enumerate(mask_cls_ablation.RUNS)]


def test_mask_cls_ranking_stable():
    names = [mask_cls_ablation.label(h, s)
             for h, s, _ in mask_cls_ablation.RUNS]
    assert names[3] == 'MaskLabelHead + ClassBalancedSampler'
    rank = mask_cls_ablation.ranking(_cls_runs(
        {0: [30, 20, 10, 40], 1: [31, 21, 11, 41], 2: [35, 25, 5, 45]}))
    assert rank['stable'] is True
    assert rank['by_mean'] == [names[3], names[0], names[1], names[2]]
    assert rank['per_seed'][2] == rank['by_mean']
    # 6 pairs; each won by the same row in all 3 seeds
    assert len(rank['pairs']) == 6
    assert all(3 in (wa, wb) for _, _, wa, wb in rank['pairs'])
    md = mask_cls_ablation.ranking_markdown(rank)
    assert 'the same in all 3 seeds' in md
    assert ' > '.join(rank['by_mean']) in md


def test_mask_cls_ranking_unstable_says_so():
    names = [mask_cls_ablation.label(h, s)
             for h, s, _ in mask_cls_ablation.RUNS]
    # rows 0 and 1 swap in seed 1; row 3 beats everything every time,
    # row 2 loses to everything every time
    rank = mask_cls_ablation.ranking(_cls_runs(
        {0: [30, 20, 10, 40], 1: [20, 30, 10, 40], 2: [30, 25, 10, 40]}))
    assert rank['stable'] is False
    assert rank['per_seed'][1] == [names[3], names[1], names[0], names[2]]
    pair01 = [p for p in rank['pairs'] if p[:2] == names[:2]][0]
    assert pair01[2:] == [2, 1]
    md = mask_cls_ablation.ranking_markdown(rank)
    assert 'not stable across the 3' in md
    held = md.split('Only these pairs keep their order in every seed: ')[1]
    assert f'{names[3]} > {names[0]}' in held        # held in every seed
    assert f'{names[0]} > {names[1]}' not in held    # flipped in seed 1
    assert held.count(' > ') == 5
    one = mask_cls_ablation.ranking(_cls_runs({0: [1, 2, 3, 4]}))
    assert 'one seed' in mask_cls_ablation.ranking_markdown(one)


def test_mask_cls_ranking_needs_every_seed():
    runs = _cls_runs({0: [1, 2, 3, 4], 1: [1, 2, 3, 4]})[:-1]
    with pytest.raises(ValueError, match="MaskLabelHead.*seed 1"):
        mask_cls_ablation.ranking(runs)
