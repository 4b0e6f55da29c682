"""UDASegmentor training step semantics on a tiny MiT student."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper

import mmplugins  # noqa: F401
from _tiny import student_cfg, uda_batch


@pytest.fixture(scope='module', autouse=True)
def _mmseg():
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def build(**kw):
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    m = MODELS.build(dict(type='UDASegmentor', segmentor=student_cfg(), **kw))
    m.init_weights()
    m.train()
    return m


def optim(m, lr=1e-2):
    return build_optim_wrapper(
        m, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=lr)))


def test_toggles_select_loss_terms():
    m = build(mix=None)
    log = m.train_step(uda_batch(dist=False, target=False), optim(m))
    assert {'src.loss', 'loss'} <= set(log)
    assert not any(k.startswith(('mix.', 'masked.', 'dist.', 'fd.'))
                   for k in log)
    assert 'pseudo_weight' not in log

    m = build(mix='class', mask_lambda=1.0, mask_block_size=8,
              dual_branch_lambda=0.5, imnet_feature_dist_lambda=0.005,
              imnet_feature_dist_classes=[3, 4])
    ow = optim(m)
    log = m.train_step(uda_batch(), ow)
    for k in ('src.loss', 'dist.loss', 'mix.loss', 'masked.loss', 'fd.loss',
              'pseudo_weight'):
        assert k in log, k
    total = sum(log[k] for k in ('src.loss', 'dist.loss', 'mix.loss',
                                 'masked.loss', 'fd.loss'))
    assert log['loss'].item() == pytest.approx(total.item(), rel=1e-5)
    # exactly one optimiser update per iteration
    assert ow._inner_count == 1


def _teacher_seen(m):
    """Parameters of the teacher at each of its forwards (pseudo-labels)."""
    seen = []
    m.teacher.register_forward_pre_hook(lambda mod, args: seen.append(
        {k: v.detach().clone() for k, v in mod.named_parameters()}))
    return seen


def test_ema_teacher_follows_reference_ramp():
    """The teacher each iteration labels the target with is the reference's
    (t=0: a copy; t: min(1 - 1/(t+1), alpha)-EMA with the student after
    step t-1) -- the EMA step is taken at the end of iteration t-1, so the
    state after train_step t-1 already holds the teacher of t."""
    m = build(mix='class', alpha=0.999)
    ow = optim(m, lr=0.1)
    student = m.student_module
    seen = _teacher_seen(m)
    before = copy.deepcopy(student.state_dict())
    m.train_step(uda_batch(seed=0), ow)
    for k, v in seen[0].items():  # t=0: a copy of the student
        assert torch.equal(v, before[k]), k
    # t=1: alpha = 0.5 -> teacher = 0.5 teacher + 0.5 student(after step 0)
    s_now = {k: v.detach().clone() for k, v in student.named_parameters()}
    assert any(not torch.equal(seen[0][k], s_now[k]) for k in s_now)
    after0 = {k: v.clone() for k, v in m.teacher.named_parameters()}
    m.train_step(uda_batch(seed=1), ow)
    for k, v in seen[1].items():
        assert torch.allclose(v, 0.5 * seen[0][k] + 0.5 * s_now[k]), k
        assert torch.equal(v, after0[k]), k  # taken at the end of step 0
    # t=2: alpha = 2/3, with the student after step 1
    s_now = {k: v.detach().clone() for k, v in student.named_parameters()}
    m.train_step(uda_batch(seed=2), ow)
    for k, v in seen[2].items():
        assert torch.allclose(v, 2 / 3 * seen[1][k] + 1 / 3 * s_now[k],
                              atol=1e-7), k
    assert not any(p.requires_grad for p in m.teacher.parameters())
    assert int(m.local_iter) == 3


def test_old_checkpoint_teacher_catches_up_one_ema_step():
    """A checkpoint of version 1 (EMA step at the start of the iteration)
    holds the teacher before the step of its `local_iter`: the first
    iteration after loading takes it, a current checkpoint does not."""
    from mmengine.runner.checkpoint import load_state_dict
    m = build(mix='class')
    ow = optim(m, lr=0.1)
    m.train_step(uda_batch(seed=0), ow)
    m.train_step(uda_batch(seed=1), ow)
    sd = m.state_dict()
    assert sd._metadata['']['version'] == 2
    for version, moves in ((2, False), (1, True)):
        sd._metadata['']['version'] = version
        n = build(mix='class')
        load_state_dict(n, sd, strict=True)
        seen = _teacher_seen(n)
        n.train_step(uda_batch(seed=2), optim(n, lr=0.1))
        expect = {k: v for k, v in m.teacher.named_parameters()}
        if moves:  # alpha(2) = 2/3 towards the student of the checkpoint
            s = dict(m.student_module.named_parameters())
            expect = {k: 2 / 3 * v + 1 / 3 * s[k] for k, v in expect.items()}
        for k, v in seen[0].items():
            assert torch.allclose(v, expect[k], atol=1e-7), (version, k)
        assert not n._teacher_behind


def test_teacher_dropout_and_droppath_off_in_train_mode():
    m = build()
    m.train()
    for mod in m.teacher.modules():
        if type(mod).__name__ in ('Dropout', 'Dropout2d', 'DropPath'):
            assert not mod.training
    assert m.student_module.training


def test_teacher_and_counter_are_in_the_checkpoint_state():
    m = build(imnet_feature_dist_lambda=0.005)
    sd = m.state_dict()
    assert 'local_iter' in sd
    assert any(k.startswith('teacher.') for k in sd)
    assert any(k.startswith('imnet_model.backbone.') for k in sd)


def test_eval_model_switch():
    s = build(mix='class', eval_model='student')
    t = build(mix='class', eval_model='teacher')
    for m in (s, t):
        m.train_step(uda_batch(seed=0), optim(m, lr=0.5))
        m.train_step(uda_batch(seed=1), optim(m, lr=0.5))
        m.eval()
    data = uda_batch(dist=False, target=False)
    x = s.data_preprocessor(data, False)['inputs']
    assert torch.allclose(s._forward(x), s.student_module._forward(x))
    assert torch.allclose(t._forward(x), t.teacher._forward(x))
    assert not torch.allclose(t._forward(x), t.student_module._forward(x))
    preds = s.val_step(dict(inputs=data['inputs'],
                            data_samples=data['data_samples']))
    assert preds[0].pred_sem_seg.shape == (32, 64)


def test_bad_configuration_errors():
    with pytest.raises(ValueError, match=r'imnet_feature_dist_classes \[7\]'):
        build(imnet_feature_dist_lambda=0.005,
              imnet_feature_dist_classes=[1, 7])
    with pytest.raises(ValueError, match='eval_model'):
        build(eval_model='ema')
    with pytest.raises(ValueError, match='mix'):
        build(mix='cutmix')
    with pytest.raises(ValueError, match='mask_ratio'):
        build(mask_lambda=1.0, mask_ratio=1.2)
    m = build(mix='class')
    with pytest.raises(KeyError, match='target_inputs'):
        m.train_step(uda_batch(target=False), optim(m))
    m = build(mix=None, dual_branch_lambda=1.0)
    with pytest.raises(KeyError, match='DualBranchAug'):
        m.train_step(uda_batch(dist=False, target=False), optim(m))
    with pytest.raises(RuntimeError, match='MMSeparateDistributedDataParallel'):
        m(torch.zeros(1, 3, 32, 64), None, mode='loss')


def test_nan_loss_stops_before_the_update():
    m = build(mix=None)
    ow = optim(m)
    before = {k: v.detach().clone()
              for k, v in m.student_module.named_parameters()}
    data = uda_batch(dist=False, target=False)
    with torch.no_grad():
        m.student_module.decode_head.conv_seg.bias.fill_(float('nan'))
    with pytest.raises(FloatingPointError, match='`src`.*iteration 0'):
        m.train_step(data, ow)
    after = dict(m.student_module.named_parameters())
    for k, v in before.items():
        if 'conv_seg.bias' not in k:
            assert torch.equal(v, after[k]), k
