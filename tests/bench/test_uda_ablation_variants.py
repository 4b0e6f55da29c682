"""bench/uda_ablation.py: each variant is the shipped config with its
toggles switched off by --cfg-options, and the schedule overrides land."""
import os.path as osp
import sys

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'bench'))


def _opts(items):
    # what tools/train.py's --cfg-options (mmengine DictAction) makes of them
    from mmengine.config import DictAction
    out = {}
    for item in items:
        k, v = item.split('=', 1)
        out[k] = DictAction._parse_iterable(v)
    return out


@pytest.mark.parametrize('name,on', [
    ('source_only', set()),
    ('dual_branch', {'dual'}),
    ('mic', {'mix', 'masked', 'rcs'}),
    ('full', {'mix', 'masked', 'rcs', 'dual'}),
])
def test_variant_toggles(name, on):
    import uda_ablation
    cfg = Config.fromfile(osp.join(ROOT, 'configs/mic_dual_aug.py'))
    cfg.merge_from_dict(_opts(uda_ablation.VARIANTS[name] +
                              uda_ablation.schedule_options(400, 50)))
    m = cfg.model
    got = {k for k, v in dict(
        mix=m.mix is not None, masked=m.mask_lambda > 0,
        dual=m.dual_branch_lambda > 0,
        rcs=cfg.train_dataloader.dataset.rare_class_sampling is not None
    ).items() if v}
    assert got == on
    # the same model and schedule for every variant
    assert m.segmentor.decode_head.type == 'DAFormerHead'
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLR']
    # warm-up over iterations 0..50 multiplied onto a poly decay that
    # reaches 0 at iteration 400 (mmengine's end is one past the last step)
    assert (cfg.param_scheduler[0].begin, cfg.param_scheduler[0].end,
            cfg.param_scheduler[1].begin,
            cfg.param_scheduler[1].end) == (0, 51, 0, 401)


def test_seeds_checked_and_summarised():
    import uda_ablation
    with pytest.raises(SystemExit, match='at least one'):
        uda_ablation.check_seeds([])
    with pytest.raises(SystemExit, match=r'repeats \[1\]'):
        uda_ablation.check_seeds([0, 1, 1])
    runs = [dict(variant=v, seed=s, mIoU=m, pseudo_weight=w, train_s=1.0)
            for v, s, m, w in [('source_only', 0, 10.0, None),
                               ('source_only', 1, 12.0, None),
                               ('full', 1, 20.0, 0.5), ('full', 0, 16.0, 0.3)]]
    out = uda_ablation.summarise(runs)
    # per-seed rows in seed order; delta against the same seed's baseline
    assert out['full']['mIoU'] == [16.0, 20.0]
    assert out['full']['delta'] == [6.0, 8.0]
    assert out['full']['delta_mean'] == 7.0
    assert out['full']['mIoU_std'] == pytest.approx(2 ** 0.5 * 2)
    assert out['source_only']['delta'] == []
    assert uda_ablation.pm([6.0, 8.0], signed=True) == '+7.00 ± 1.41'


def test_hrda_bench_reads_per_class_iou_from_the_log(tmp_path):
    import hrda_bench
    run = tmp_path / '20260101_000000'
    run.mkdir()
    (run / '20260101_000000.log').write_text(
        '2026/01/01 - mmengine - INFO - per class results:\n'
        '+---------------+-------+-------+\n'
        '|     Class     |  IoU  |  Acc  |\n'
        '+---------------+-------+-------+\n'
        '|      Road     | 60.25 | 70.1  |\n'
        '| Traffic Light |  0.0  |  0.0  |\n'
        '|     Rider     |  nan  |  nan  |\n'
        '+---------------+-------+-------+\n')
    iou = hrda_bench.class_iou(str(tmp_path))
    assert iou['Road'] == 60.25 and iou['Traffic Light'] == 0.0
    assert iou['Rider'] != iou['Rider']  # nan: class absent from val
    assert set(hrda_bench.SMALL_CLASSES) == {
        'Traffic Light', 'Traffic Sign', 'Person', 'Rider'}


def test_warm_start_trained_once_per_seed_and_shared(tmp_path, monkeypatch):
    """--warm-start N: the source-only variant of the same config for N
    iterations, once per seed (cached by the resolved config's hash); every
    variant's student is initialised from it."""
    import json
    import types

    import uda_ablation
    calls = []

    def fake_train(cmd, cwd, check, stdout):
        calls.append(cmd)
        wd = cmd[cmd.index('--work-dir') + 1]
        run = osp.join(wd, '20260101_000000', 'vis_data')
        import os
        os.makedirs(run, exist_ok=True)
        open(osp.join(wd, 'iter_3.pth'), 'wb').close()
        with open(osp.join(run, 'scalars.json'), 'w') as f:
            f.write(json.dumps(dict(mIoU=12.5, step=3)) + '\n')

    monkeypatch.setattr(uda_ablation.subprocess, 'run', fake_train)
    args = types.SimpleNamespace(warm_start=3, lr=6e-5, warm_lr=6e-4,
                                 cfg_options=[],
                                 config='configs/mic_dual_aug.py',
                                 work_dir=str(tmp_path))
    first = uda_ablation.warm_start(args, seed=0)
    assert len(calls) == 1 and first['mIoU'] == 12.5
    opts = calls[0][calls[0].index('--cfg-options') + 1:]
    # the source-only variant, this seed, the warm-start length
    assert set(uda_ablation.VARIANTS['source_only']) <= set(opts)
    assert {'randomness.seed=0', 'train_cfg.max_iters=3',
            'optim_wrapper.optimizer.lr=0.0006'} <= set(opts)
    assert first['checkpoint'] == osp.join(str(tmp_path), 'seed0',
                                           'warm_start', 'iter_3.pth')
    # the same seed and config: reused, not retrained
    assert uda_ablation.warm_start(args, seed=0) == first
    assert len(calls) == 1
    # another seed is another warm start
    uda_ablation.warm_start(args, seed=1)
    assert len(calls) == 2
    # a changed option retrains
    args.cfg_options = ['model.pseudo_threshold=0.9']
    uda_ablation.warm_start(args, seed=0)
    assert len(calls) == 3
    # the variants' student init
    from mmplugins.utils.warm_start import student_init_options
    cfg = Config.fromfile(osp.join(ROOT, 'configs/mic_dual_aug.py'))
    cfg.merge_from_dict(_opts(student_init_options(first['checkpoint'])))
    assert cfg.model.segmentor.init_cfg == dict(
        type='Pretrained', checkpoint=first['checkpoint'], prefix='student.')
    with pytest.raises(SystemExit, match='--warm-start must be >= 0'):
        uda_ablation.main(['--warm-start', '-1'])
