"""UDAOptimWrapperConstructor: student-only params, equal groups merged."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper

import mmplugins  # noqa: F401
from mmplugins.models.uda.uda_optim_constructor import merge_param_groups
from _tiny import student_cfg, uda_batch

PARAMWISE = dict(custom_keys={'pos_block': dict(decay_mult=0.),
                              'norm': dict(decay_mult=0.),
                              'head': dict(lr_mult=10.)})


@pytest.fixture(scope='module', autouse=True)
def _mmseg():
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _model():
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    m = MODELS.build(dict(type='UDASegmentor', segmentor=student_cfg(),
                          mix='class', mask_lambda=1.0,
                          dual_branch_lambda=1.0))
    m.init_weights()
    m.train()
    return m


def _wrapper(model, **paramwise):
    return build_optim_wrapper(model, dict(
        type='OptimWrapper', constructor='UDAOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
        paramwise_cfg=dict(PARAMWISE, **paramwise)))


def test_groups_merge_by_options_and_cover_only_the_student():
    m = _model()
    merged = _wrapper(m).optimizer.param_groups
    split = _wrapper(m, merge_groups=False).optimizer.param_groups
    student = {id(p) for p in m.student.parameters()}
    for groups in (merged, split):
        ids = [id(p) for g in groups for p in g['params']]
        assert len(ids) == len(set(ids)) == len(student)
        assert set(ids) == student  # no teacher / frozen copy parameter
    assert len(split) == len(student)  # mmengine: one group per parameter
    # lr x10 for 'head', decay x0 for the backbone's norms / pos_block (the
    # tiny head's BN is named 'bn', so no head group without decay)
    opts = [(g['lr'], g['weight_decay']) for g in merged]
    assert sorted(opts) == [(1e-3, 0.0), (1e-3, 0.01), (1e-2, 0.01)]
    head = {id(p) for p in m.student.decode_head.parameters()}
    for g in merged:
        ids = {id(p) for p in g['params']}
        assert (ids <= head) == (g['lr'] == 1e-2)


def test_merged_groups_give_the_same_training_steps():
    a = _model()
    b = copy.deepcopy(a)
    wa, wb = _wrapper(a), _wrapper(b, merge_groups=False)
    for it in range(3):
        torch.manual_seed(it)
        a.train_step(uda_batch(seed=it), wa)
        torch.manual_seed(it)
        b.train_step(uda_batch(seed=it), wb)
    for (name, pa), pb in zip(a.student.named_parameters(),
                              b.student.parameters()):
        torch.testing.assert_close(pa, pb, msg=name)


def test_merge_param_groups_keeps_order_and_options():
    p = [torch.nn.Parameter(torch.zeros(1)) for _ in range(5)]
    groups = [dict(params=[p[0]], lr=1.0), dict(params=[p[1]], lr=2.0),
              dict(params=[p[2]], lr=1.0), dict(params=[p[3]]),
              dict(params=[p[4]], lr=2.0, betas=(0.9, 0.99))]
    out = merge_param_groups(groups)
    assert [[id(x) for x in g['params']] for g in out] == [
        [id(p[0]), id(p[2])], [id(p[1])], [id(p[3])], [id(p[4])]]
    assert [g.get('lr') for g in out] == [1.0, 2.0, None, 2.0]
    assert groups[0]['params'] == [p[0]]  # inputs left untouched


def test_bad_merge_option():
    with pytest.raises(TypeError, match='merge_groups'):
        _wrapper(_model(), merge_groups='yes')


def test_paramwise_lines_go_to_the_log_file_only(tmp_path, capsys):
    import logging

    from mmengine.logging import MMLogger, print_log

    from mmplugins.models.uda.uda_optim_constructor import \
        paramwise_lines_to_log_file_only
    log_file = tmp_path / 'run.log'
    logger = MMLogger.get_instance('paramwise_quiet', log_file=str(log_file))
    with paramwise_lines_to_log_file_only():
        print_log('paramwise_options -- a.weight:lr=1', logger=logger)
        print_log('kept on the console', logger=logger)
    print_log('paramwise_options -- after:lr=1', logger=logger)
    out = capsys.readouterr().out
    assert 'a.weight' not in out and 'kept on the console' in out
    assert 'after:lr' in out  # the filter is removed afterwards
    for h in logger.handlers:
        h.flush()
    text = log_file.read_text()
    assert 'paramwise_options -- a.weight' in text
    assert all(not any(isinstance(f, logging.Filter) and
                       type(f).__name__ == '_ParamwiseLinesFilter'
                       for f in h.filters) for h in logger.handlers)
