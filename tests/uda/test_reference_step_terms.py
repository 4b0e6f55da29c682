"""Each loss term of one UDA step with its weight, against plain torch.

The expected losses and gradients are computed here from what each network
was fed (recorded by forward hooks) with ``F.cross_entropy`` and
``torch.autograd``, never by calling the segmentor's loss code; the
reference definitions are lhoyer/DAFormer / HRDA / MIC ``seg/``
(``dacs.py``, ``masking_consistency_module.py``, ``teacher_module.py``,
``hrda_head.py``).
"""
import copy
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper

from _tiny import student_cfg, uda_batch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)),
                            'seg_components'))


def _det_student(**head):
    """The tiny student without dropout / drop-path (deterministic train
    forward)."""
    cfg = student_cfg()
    cfg['decode_head']['dropout_ratio'] = 0.0
    cfg['decode_head'].update(head)
    cfg['backbone']['drop_path_rate'] = 0.0
    return cfg


def _build(segmentor=None, **kw):
    import mmplugins  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    cfg = dict(type='UDASegmentor', segmentor=segmentor or _det_student(),
               **kw)
    with DefaultScope.overwrite_default_scope('mmseg'):
        m = MODELS.build(cfg)
    m.init_weights()
    m.train()
    return m


def _fed(net):
    """Inputs ``net`` is called with, in order."""
    seen = []
    net.register_forward_pre_hook(
        lambda mod, args: seen.append(args[0].detach().clone()))
    return seen


def _step_grads(model, batch):
    """One train_step; the student's gradients at the optimizer step (the
    step itself is not taken)."""
    opt = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.1))
    grads = {}

    def step(**kwargs):
        for k, p in model.student.named_parameters():
            grads[k] = None if p.grad is None else p.grad.detach().clone()
    opt.step = step
    log = model.train_step(batch, opt)
    return log, grads


def _ce(logits, label, weight=None):
    """Plain mean cross-entropy at the label's size (mmseg's CE: mean
    over all pixels, the ignored ones counted as 0)."""
    logits = F.interpolate(logits, size=label.shape[-2:], mode='bilinear',
                           align_corners=False)
    ce = F.cross_entropy(logits, label, reduction='none', ignore_index=255)
    if weight is not None:
        ce = ce * weight
    return ce.mean()


def _gt(data, key='data_samples'):
    return torch.stack([d.gt_sem_seg.data for d in data[key]])[:, 0].long()


# ---------------------------------------------- term weights and gradients
def test_each_term_weight_reaches_the_gradient():
    """src + FD (lambda 0.05) + dual branch (0.3) + MIC on the source
    (0.7): every logged term equals its plain-torch value x its weight, and
    the gradient the optimizer sees is the gradient of their sum -- so a
    weight dropped or changed, or a pass left out of backward, fails."""
    model = _build(mix=None, dual_branch_lambda=0.3, mask_lambda=0.7,
                   mask_mode='separatesrc', mask_block_size=8,
                   imnet_feature_dist_lambda=0.05)
    with torch.no_grad():  # the frozen copy differs from the student
        g = torch.Generator().manual_seed(1)
        for p in model.imnet_model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    ref = copy.deepcopy(model.student)
    imnet = copy.deepcopy(model.imnet_model)
    fed = _fed(model.student)
    data = model.data_preprocessor(
        uda_batch(n=2, dist=True, target=False, seed=5), True)
    log, grads = _step_grads(model, uda_batch(n=2, dist=True, target=False,
                                              seed=5))
    src_in, dist_in, masked_in = fed
    assert torch.equal(src_in, data['inputs'])
    assert torch.equal(dist_in, data['dist_inputs'])
    gt, dist_gt = _gt(data), _gt(data, 'dist_data_samples')

    feats = ref.backbone(src_in)
    src = _ce(ref.decode_head(feats), gt)
    with torch.no_grad():
        f_imnet = imnet['backbone'](src_in)[-1]
    fd = 0.05 * torch.norm(feats[-1] - f_imnet, dim=1).mean()
    dist = 0.3 * _ce(ref(dist_in, None, mode='tensor'), dist_gt)
    masked = 0.7 * _ce(ref(masked_in, None, mode='tensor'), gt)
    for key, value in (('src.loss', src), ('fd.loss', fd),
                       ('dist.loss', dist), ('masked.loss', masked)):
        assert log[key].item() == pytest.approx(value.item(), rel=1e-4), key
    params = [p for _, p in ref.named_parameters()]
    expected = torch.autograd.grad(src + fd + dist + masked, params,
                                   allow_unused=True)
    for (k, _), e in zip(ref.named_parameters(), expected):
        if e is None:
            assert grads[k] is None or not grads[k].any(), k
            continue
        assert torch.allclose(grads[k], e, rtol=1e-3, atol=1e-6), k


# ---------------------------------------------------------- source-only
def test_source_only_masks_the_source_against_its_labels():
    """Reference (MIC exp. 85, ``source_only=True``): no EMA teacher, no
    pseudo-labels, no mix (though ``mix='class'``); MIC masks the source
    images whatever the mask mode says (here 'separatetrg') and trains on
    their ground truth with no pixel weight; no target batch needed."""
    model = _build(source_only=True, mix='class', mask_lambda=0.5,
                   mask_mode='separatetrg', mask_block_size=8)
    assert model.teacher is None and model.mic.teacher is None
    assert not any(k.startswith('teacher.') for k in model.state_dict())
    fed = _fed(model.student)
    batch = uda_batch(n=2, dist=False, target=False, seed=6)
    data = model.data_preprocessor(batch, True)
    ref = copy.deepcopy(model.student)
    log, _ = _step_grads(model, batch)
    src_in, masked_in = fed  # two passes: source and masked source
    gt = _gt(data)
    kept = (masked_in - src_in).abs().amax(1) < 1e-6
    zero = masked_in.abs().amax(1) == 0
    assert torch.all(kept | zero) and 0.05 < zero.float().mean() < 0.95
    assert not any(k.startswith(('mix.', 'pseudo_weight')) for k in log)
    assert log['masked.loss'].item() == pytest.approx(
        0.5 * _ce(ref(masked_in, None, mode='tensor'), gt).item(), rel=1e-4)
    # the student is evaluated; there is no teacher to evaluate
    with pytest.raises(ValueError, match="eval_model='teacher'.*source_only"):
        _build(source_only=True, eval_model='teacher')


def test_source_only_aug_mode_augments_the_source():
    """'...aug' modes under source_only: the source is strongly augmented
    (colour jitter always on here) before masking."""
    model = _build(source_only=True, mask_lambda=1.0,
                   mask_mode='separatetrgaug', mask_block_size=8,
                   color_jitter_prob=1.0)
    fed = _fed(model.student)
    _step_grads(model, uda_batch(n=2, dist=False, target=False, seed=7))
    src_in, masked_in = fed
    kept = masked_in.abs().amax(1) > 0
    assert (masked_in - src_in).abs().amax(1)[kept].min() > 1e-3


# ----------------------------------------------- MIC teacher, threshold None
def _teacher_probs(teacher, tgt):
    with torch.no_grad():
        logits = teacher(tgt, None, mode='tensor')
    logits = F.interpolate(logits, size=tgt.shape[-2:], mode='bilinear',
                           align_corners=False)
    return logits.softmax(1).max(1)


def test_mask_pseudo_threshold_none_and_one_weight_per_batch():
    """``mask_pseudo_threshold=None``: a separate MIC teacher whose pseudo
    weight is 1 on every pixel (0 in the ignored top rows); the main
    teacher's weight (ClassMix) is ONE scalar for the batch: the share of
    the batch's pixels over the threshold, although the two images' own
    shares differ."""
    model = _build(mix='class', mask_lambda=1.0, mask_mode='separatetrg',
                   mask_pseudo_threshold=None, mask_block_size=8,
                   pseudo_weight_ignore_top=4, color_jitter_prob=0.0,
                   blur=False)
    assert model.mic.teacher is not None
    batch = uda_batch(n=2, dist=False, seed=8)
    tgt = model.data_preprocessor(batch, True)['target_inputs']
    pmax, plabel = _teacher_probs(model.teacher, tgt)
    # the threshold (a quantile of the batch's confidences) at which the
    # two images' own confident shares differ most
    qs = torch.quantile(pmax.flatten(), torch.linspace(0.05, 0.95, 19))
    thr = max(qs.tolist(), key=lambda t: abs(
        (pmax[0] >= t).float().mean() - (pmax[1] >= t).float().mean()))
    own = (pmax >= thr).float().mean((1, 2))
    assert abs(own[0] - own[1]) > 0.1, own  # the images differ
    model.pseudo_threshold = thr
    mic_pmax, mic_label = _teacher_probs(model.mic.teacher, tgt)
    losses = []
    seg_loss = model._seg_loss

    def spy(logits, label, weight, prefix, *args, **kwargs):
        losses.append((prefix, label, weight))
        return seg_loss(logits, label, weight, prefix, *args, **kwargs)
    model._seg_loss = spy
    log, _ = _step_grads(model, batch)
    batch_share = (pmax >= thr).float().mean()
    assert log['pseudo_weight'].item() == pytest.approx(batch_share.item())
    (_, mix_lbl, mix_w), = [x for x in losses if x[0] == 'mix']
    from_tgt = mix_w != 1  # the target pixels of the mix
    assert from_tgt.any()
    expected = torch.full_like(mix_w, batch_share.item())
    expected[:, :4] = 0
    assert torch.allclose(mix_w[from_tgt], expected[from_tgt])
    (_, m_lbl, m_w), = [x for x in losses if x[0] == 'masked']
    assert torch.equal(m_lbl, mic_label)
    expected = torch.ones_like(m_w)
    expected[:, :4] = 0
    assert torch.equal(m_w, expected)
    assert log['masked.pseudo_weight'].item() == 1.0


# ------------------------------------------------------- teacher buffers
def _bn(net):
    return [m for m in net.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)][-1]


@pytest.mark.parametrize('mode', ['own', 'student'])
def test_teacher_buffers(mode):
    """'own' (reference: EMA over parameters only): the teacher's BN
    running statistics move only by its own train-mode forwards on the
    target, ``r <- 0.9 r + 0.1 mean(input)``; 'student': copied from the
    student at every EMA step."""
    model = _build(mix='class', teacher_buffers=mode, blur=False)
    bn_t, bn_s = _bn(model.teacher), _bn(model.student)
    seen = []
    bn_t.register_forward_pre_hook(
        lambda mod, args: seen.append(args[0].detach().clone()))
    r = bn_t.running_mean.clone()
    opt = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.1))
    for i in range(2):
        model.train_step(uda_batch(n=2, dist=False, seed=10 + i), opt)
        assert bn_t.training  # the teacher's BN runs in train mode
        r = 0.9 * r + 0.1 * seen[-1].mean((0, 2, 3))
        if mode == 'own':
            assert torch.allclose(bn_t.running_mean, r, atol=1e-6)
            assert int(bn_t.num_batches_tracked) == i + 1
            assert not torch.allclose(bn_t.running_mean, bn_s.running_mean)
        else:
            assert torch.equal(bn_t.running_mean, bn_s.running_mean)
            assert torch.equal(bn_t.running_var, bn_s.running_var)
    with pytest.raises(ValueError, match='teacher_buffers'):
        _build(teacher_buffers='copy')


# ------------------------------------------------------------- HRDA step
def test_hrda_step_weights_fused_detail_context_and_mask_lambda():
    """HRDA student in the UDA step (reference ``HRDAHead.losses`` and
    ``masking_consistency_module``): fused x (1 - 0.1 - 0.2), detail x 0.1
    on the label cropped to the detail box, context x 0.2 on the
    attention-weighted ``(1 - a) lr`` (``a`` zeroed outside the crop);
    ``mask_lambda`` (0.5) scales the masked term's fused loss only."""
    from test_hrda import hrda_cfg
    cfg = hrda_cfg(hr_crop=(32, 32))
    cfg['decode_head']['lr_loss_weight'] = 0.2
    cfg['data_preprocessor']['size'] = (64, 64)
    model = _build(segmentor=cfg, mix=None, mask_lambda=0.5,
                   mask_mode='separatesrc', mask_block_size=8)
    ref = copy.deepcopy(model.student)
    outs = []
    student_logits = model._student_logits

    def spy(inputs, mode=None):
        out = student_logits(inputs, mode)
        outs.append((inputs.detach().clone(), out))
        return out
    model._student_logits = spy
    batch = uda_batch(n=2, h=64, w=64, dist=False, target=False, seed=9)
    data = model.data_preprocessor(batch, True)
    gt = _gt(data)
    log, _ = _step_grads(model, batch)
    head = ref.decode_head
    for prefix, (inp, out), lam in zip(('src', 'masked'), outs, (1.0, 0.5)):
        y1, y2, x1, x2 = out['hr_box']
        ce_fused = _ce(out['fused'], gt)
        ce_hr = _ce(out['hr'], gt[:, y1:y2, x1:x2])
        # the context output by hand: raw context logits and attention
        with torch.no_grad():
            lr_feats = ref.extract_unscaled_feat(F.interpolate(
                inp, scale_factor=0.5, mode='bilinear', align_corners=False))
            lr_raw = head.head(lr_feats)
            att = torch.sigmoid(head.scale_attention(lr_feats))
        mask = torch.zeros_like(att[:, :1])
        mask[:, :, y1 // 8:y2 // 8, x1 // 8:x2 // 8] = 1
        lr_w = (1 - att * mask) * lr_raw
        assert torch.allclose(out['lr'], lr_w, atol=1e-5)
        ce_lr = _ce(lr_w, gt)
        assert log[f'{prefix}.loss_ce'].item() == pytest.approx(
            lam * 0.7 * ce_fused.item(), rel=1e-4)
        assert log[f'{prefix}.hr.loss_ce'].item() == pytest.approx(
            0.1 * ce_hr.item(), rel=1e-4)
        assert log[f'{prefix}.lr.loss_ce'].item() == pytest.approx(
            0.2 * ce_lr.item(), rel=1e-4)
        assert log[f'{prefix}.loss'].item() == pytest.approx(
            (lam * 0.7 * ce_fused + 0.1 * ce_hr + 0.2 * ce_lr).item(),
            rel=1e-4)
