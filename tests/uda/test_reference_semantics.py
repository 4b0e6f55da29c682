"""The DACS / DAFormer / MIC step against the reference's definitions.

Every expected value here is derived in the test (by hand, combinatorics or
plain torch/numpy), never by running our implementation a second time.
Reference: lhoyer/DAFormer and lhoyer/MIC (``seg/``), kornia 0.5.8.
"""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmplugins.models.uda.utils import (blur_kernel_size, class_mix_masks,
                                        strong_transform)

from _tiny import NUM_CLASSES, student_cfg, uda_batch

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def _grey(n, h=4, w=4, value=0.5):
    return (torch.full((n, 3, h, w), value * 255.0) - MEAN) / STD


def _to_unit(x):
    return (x * STD + MEAN) / 255.0


# ------------------------------------------------------------ row 1: jitter
def test_jitter_on_grey_image_has_reference_additive_semantics():
    """kornia 0.5.8 ColorJitter(s) on grey 0.5: brightness x + (b - 1),
    contrast x * c (b, c ~ U(0.8, 1.2)), in a random order; saturation and
    hue leave grey unchanged. torchvision's version (multiplicative
    brightness, contrast blended towards the grey mean) keeps a grey 0.5 in
    [0.4, 0.6]; the reference's leaves it in about half of the draws."""
    torch.manual_seed(0)
    out = _to_unit(strong_transform(_grey(2000), MEAN, STD, 0.2, 1.0,
                                    blur=False))
    # grey stays grey and constant over the image
    assert torch.allclose(out, out[:, :1, :1, :1].expand_as(out), atol=1e-4)
    v = out[:, 0, 0, 0].numpy()
    # hand-derived range: min(0.3 * 0.8, 0.5 * 0.8 - 0.2), max(0.7 * 1.2,
    # 0.6 + 0.2)
    assert v.min() >= 0.2 - 1e-4 and v.max() <= 0.84 + 1e-4
    rng = np.random.default_rng(0)
    b = rng.uniform(-0.2, 0.2, 10**6)
    c = rng.uniform(0.8, 1.2, 10**6)
    b_first = rng.random(10**6) < 0.5
    ref = np.where(b_first, (0.5 + b) * c, 0.5 * c + b)
    expected = np.mean((ref < 0.4) | (ref > 0.6))
    assert 0.40 < expected < 0.55  # about half of the draws
    got = np.mean((v < 0.4) | (v > 0.6))
    assert abs(got - expected) < 0.04, (got, expected)


def test_blur_kernel_is_reference_formula():
    # int(floor(ceil(0.1 L) - 0.5 + ceil(0.1 L) % 2)), by hand
    assert [blur_kernel_size(n) for n in (32, 100, 128, 256, 512, 1024)] \
        == [3, 9, 13, 25, 51, 103]


# ------------------------------------------------------ row 2: on/off gate
def _changed(out, inp):
    return (out - inp).abs().flatten(1).amax(1) > 1e-3


@pytest.mark.parametrize('gate', ['batch', 'sample'])
def test_jitter_switched_once_per_batch(gate):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    img = torch.rand(4, 3, 6, 6) * 2 - 1
    per_call = []
    for _ in range(300):
        out = strong_transform(img, MEAN, STD, 0.2, 0.5, blur=False,
                               gate=gate, generator=g)
        per_call.append(_changed(out, img))
    per_call = torch.stack(per_call)
    mixed_calls = (per_call.any(1) & ~per_call.all(1)).float().mean()
    assert abs(per_call.float().mean().item() - 0.5) < 0.07
    if gate == 'batch':
        assert mixed_calls == 0  # all samples or none
    else:
        assert mixed_calls > 0.7  # 1 - 2 / 16 = 0.875


def test_jitter_probability_is_probability_of_application():
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 3, 6, 6) * 2 - 1
    hits = [bool(_changed(strong_transform(img, MEAN, STD, 0.2, 0.8,
                                           blur=False, generator=g), img))
            for _ in range(400)]
    assert abs(np.mean(hits) - 0.8) < 0.06


# --------------------------------------------------- row 3: ClassMix pool
def _freq(masks_fn, n=3000):
    counts = {}
    for _ in range(n):
        key = masks_fn()
        counts[key] = counts.get(key, 0) + 1
    return {k: v / n for k, v in counts.items()}


def test_class_mix_batch_pool_distribution_on_two_samples():
    """Sample A has classes {0, 1}, sample B {2, ignore}. The reference
    draws ceil(4/2) = 2 of the batch pool {0, 1, 2, 255} for each sample,
    uniformly among the C(4, 2) = 6 pairs, so A pastes: nothing 1/6, both
    of its classes 1/6, class 0 alone 2/6, class 1 alone 2/6."""
    lbl = torch.zeros(2, 2, 2, dtype=torch.long)
    lbl[0] = torch.tensor([[0, 0], [1, 1]])
    lbl[1] = torch.tensor([[2, 2], [255, 255]])
    g = torch.Generator().manual_seed(0)

    def draw():
        m = class_mix_masks(lbl, generator=g)[:, 0]
        a = tuple(sorted(set(lbl[0][m[0] > 0].tolist())))
        b = tuple(sorted(set(lbl[1][m[1] > 0].tolist())))
        return a, b

    freq = _freq(draw)
    pairs = list(itertools.combinations([0, 1, 2, 255], 2))
    expected = {}
    for pa in pairs:
        for pb in pairs:
            key = (tuple(c for c in pa if c in (0, 1)),
                   tuple(c for c in pb if c in (2, 255)))
            expected[key] = expected.get(key, 0) + 1 / 36
    assert set(freq) <= set(expected)
    for k, p in expected.items():
        assert abs(freq.get(k, 0) - p) < 0.03, (k, freq.get(k), p)
    a_marg = {}
    for (a, _), p in freq.items():
        a_marg[a] = a_marg.get(a, 0) + p
    assert abs(a_marg.get((), 0) - 1 / 6) < 0.03
    assert abs(a_marg.get((0, 1), 0) - 1 / 6) < 0.03


def test_class_mix_sample_pool_distribution_on_two_samples():
    lbl = torch.zeros(2, 2, 2, dtype=torch.long)
    lbl[0] = torch.tensor([[0, 0], [1, 1]])
    lbl[1] = torch.tensor([[2, 2], [255, 255]])
    g = torch.Generator().manual_seed(0)

    def draw():
        m = class_mix_masks(lbl, generator=g, pool='sample')[:, 0]
        return (tuple(sorted(set(lbl[0][m[0] > 0].tolist()))),
                tuple(sorted(set(lbl[1][m[1] > 0].tolist()))))

    freq = _freq(draw, 1000)
    # A: one of its two classes, evenly; B: its only class, never ignore
    assert set(freq) == {((0, ), (2, )), ((1, ), (2, ))}
    assert abs(freq[((0, ), (2, ))] - 0.5) < 0.06
    with pytest.raises(ValueError, match='class_mix_pool'):
        class_mix_masks(lbl, pool='image')


# ------------------------------------------------------- keys and bad input
def _build(**kw):
    import mmplugins  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = dict(type='UDASegmentor', segmentor=student_cfg(), **kw)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg)


def test_reference_jitter_keys_and_contradictions():
    assert _build().color_jitter_prob == pytest.approx(0.8)
    assert _build(color_jitter_p=0.2).color_jitter_prob == pytest.approx(0.8)
    assert _build(color_jitter_probability=0.3).color_jitter_prob == \
        pytest.approx(0.7)
    assert _build(color_jitter_prob=0.3).color_jitter_prob == \
        pytest.approx(0.3)
    with pytest.raises(ValueError, match='color_jitter_p.*color_jitter_prob'):
        _build(color_jitter_p=0.2, color_jitter_prob=0.8)
    with pytest.raises(ValueError, match='class_mix_pool'):
        _build(class_mix_pool='image')
    with pytest.raises(ValueError, match='strong_aug_gate'):
        _build(strong_aug_gate='pixel')
    with pytest.raises(ValueError, match='mask_mode'):
        _build(mask_lambda=1.0, mask_mode='separatetarget')
    with pytest.raises(ValueError, match='mask_mode=None'):
        _build(mask_lambda=1.0, mask_mode=None)
    with pytest.raises(ValueError, match='mask_alpha'):
        _build(mask_lambda=1.0, mask_alpha='different')
    with pytest.raises(ValueError, match='mask_generator'):
        _build(mask_lambda=1.0, mask_block_size=16,
               mask_generator=dict(type='block', mask_block_size=16,
                                   mask_ratio=0.7))
    m = _build(mask_lambda=1.0, mask_generator=dict(
        type='block', mask_block_size=64, mask_ratio=0.5))
    assert (m.mic.block_size, m.mic.mask_ratio) == (64, 0.5)
    assert m.mic.teacher is None
    assert _build(mask_lambda=1.0, mask_alpha=0.9).mic.teacher is not None


# ------------------------------------------- composition of one UDA step
class _Recorder:
    """Forward pre-hooks and a `_seg_loss` spy: what each network is fed."""

    def __init__(self, model):
        self.calls = []
        self.losses = []
        for name, net in (('student', model.student),
                          ('teacher', model.teacher)):
            net.register_forward_pre_hook(self._hook(name))
        if model.imnet_model is not None:
            model.imnet_model['backbone'].register_forward_pre_hook(
                self._hook('imnet'))
        if model.mic is not None and model.mic.teacher is not None:
            model.mic.teacher.register_forward_pre_hook(
                self._hook('mic_teacher'))
        seg_loss = model._seg_loss

        def spy(logits, label, weight, prefix, *args, **kwargs):
            self.losses.append(
                (prefix, label.clone(),
                 None if weight is None else weight.clone()))
            return seg_loss(logits, label, weight, prefix, *args, **kwargs)

        model._seg_loss = spy

    def _hook(self, name):
        def hook(module, args):
            self.calls.append((name, args[0].detach().clone()))
        return hook

    def fed(self, name):
        return [x for n, x in self.calls if n == name]

    def loss(self, prefix):
        (lbl, w), = [(l, w) for p, l, w in self.losses if p == prefix]
        return lbl, w


def _step(model, batch):
    from mmengine.optim import OptimWrapper
    opt = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.0))
    model.train()
    return model.train_step(batch, opt)


def _teacher_pseudo(model, tgt, threshold, top):
    """Pseudo-label/weight from the teacher's logits, by the reference's
    definition (argmax; one scalar = share of pixels with max prob >=
    threshold; 0 in the top margin)."""
    with torch.no_grad():
        logits = model.teacher(tgt, None, mode='tensor')
    logits = torch.nn.functional.interpolate(
        logits, size=tgt.shape[-2:], mode='bilinear', align_corners=False)
    prob = logits.softmax(1)
    pmax, lbl = prob.max(1)
    w = torch.full_like(pmax, (pmax >= threshold).float().mean().item())
    w[:, :top] = 0
    return lbl, w


def test_one_uda_step_feeds_each_network_what_the_reference_does():
    torch.manual_seed(0)
    model = _build(mix='class', mask_lambda=1.0, mask_mode='separatetrg',
                   mask_block_size=8, color_jitter_prob=0.0, blur=False,
                   pseudo_threshold=0.0, pseudo_weight_ignore_top=8,
                   imnet_feature_dist_lambda=0.005,
                   imnet_feature_dist_classes=[1, 2])
    model.init_weights()
    rec = _Recorder(model)
    batch = uda_batch(n=2, dist=False, seed=3)
    data = model.data_preprocessor(batch, True)
    src, tgt = data['inputs'], data['target_inputs']
    src_gt = torch.stack([d.gt_sem_seg.data for d in data['data_samples']
                          ])[:, 0].long()
    _step(model, batch)

    # the teacher sees the un-augmented target, once
    t_in, = rec.fed('teacher')
    assert torch.equal(t_in, tgt)
    # FD: the frozen ImageNet copy sees the source only
    fd_in, = rec.fed('imnet')
    assert torch.equal(fd_in, src)
    s_src, s_mix, s_masked = rec.fed('student')
    assert torch.equal(s_src, src)

    p_lbl, p_w = _teacher_pseudo(model, tgt, 0.0, 8)
    mix_lbl, mix_w = rec.loss('mix')
    # m from the label: pasted pixels carry the source's label AND image
    m = ((s_mix - src).abs().amax(1) < 1e-5).float()
    not_m = ((s_mix - tgt).abs().amax(1) < 1e-5).float()
    assert torch.all(m + not_m >= 1)  # every pixel from one of the two
    m = torch.where((src - tgt).abs().amax(1) < 1e-5, m * 0, m)
    assert 0 < m.mean() < 1
    mm = m[:, None]
    assert torch.allclose(s_mix, mm * src + (1 - mm) * tgt, atol=1e-5)
    exp_lbl = (m * src_gt + (1 - m) * p_lbl).long()
    exp_w = m * 1 + (1 - m) * p_w
    assert torch.equal(mix_lbl, exp_lbl)
    assert torch.allclose(mix_w, exp_w)
    # the test tells m from 1 - m: the swapped composition is different
    swapped_w = (1 - m) * 1 + m * p_w
    swapped_lbl = ((1 - m) * src_gt + m * p_lbl).long()
    assert not torch.allclose(mix_w, swapped_w)
    assert not torch.equal(mix_lbl, swapped_lbl)

    # MIC: the teacher's labels and weight, target blocks zeroed
    masked_lbl, masked_w = rec.loss('masked')
    assert torch.equal(masked_lbl, p_lbl)
    assert torch.allclose(masked_w, p_w)
    kept = (s_masked - tgt).abs().amax(1) < 1e-5
    zero = s_masked.abs().amax(1) == 0
    assert torch.all(kept | zero)
    # the source term: ground truth, no weight
    src_lbl, src_w = rec.loss('src')
    assert torch.equal(src_lbl, src_gt) and src_w is None


@pytest.mark.parametrize('mode', ['separatesrc', 'separate'])
def test_mic_modes_use_the_reference_images_and_labels(mode):
    torch.manual_seed(0)
    model = _build(mix=None, mask_lambda=0.5, mask_mode=mode,
                   mask_block_size=8, pseudo_threshold=0.0,
                   pseudo_weight_ignore_top=8)
    model.init_weights()
    rec = _Recorder(model)
    batch = uda_batch(n=2, dist=False, seed=4)
    data = model.data_preprocessor(batch, True)
    src, tgt = data['inputs'], data['target_inputs']
    src_gt = torch.stack([d.gt_sem_seg.data for d in data['data_samples']
                          ])[:, 0].long()
    _step(model, batch)
    lbl, w = rec.loss('masked')
    _, s_masked = rec.fed('student')
    if mode == 'separatesrc':
        assert rec.fed('teacher') == []  # no target, no pseudo-labels
        assert torch.equal(lbl, src_gt) and w is None
        ref = src
    else:
        p_lbl, p_w = _teacher_pseudo(model, tgt, 0.0, 8)
        assert torch.equal(lbl, torch.stack([src_gt[0], p_lbl[0]]))
        assert torch.allclose(w, torch.stack([torch.ones_like(p_w[0]),
                                              p_w[0]]))
        ref = torch.stack([src[0], tgt[0]])
    kept = (s_masked - ref).abs().amax(1) < 1e-5
    assert torch.all(kept | (s_masked.abs().amax(1) == 0))


def test_separate_mic_teacher_follows_its_own_ema_and_threshold():
    """mask_alpha=0.5: MIC's teacher = min(1 - 1/(t+1), 0.5)-EMA of the
    student, the main one min(1 - 1/(t+1), 0.999); MIC's pseudo-weight uses
    mask_pseudo_threshold."""
    torch.manual_seed(0)
    model = _build(mix='class', mask_lambda=1.0, mask_alpha=0.5,
                   mask_pseudo_threshold=1.0, pseudo_threshold=0.0,
                   alpha=0.999, mask_block_size=8)
    model.init_weights()
    rec = _Recorder(model)
    from mmengine.optim import OptimWrapper
    opt = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.5))
    model.train()
    name = 'decode_head.conv_seg.weight'
    student_w = []
    for i in range(3):
        student_w.append(dict(model.student.named_parameters())[name]
                         .detach().clone())
        model.train_step(uda_batch(n=2, dist=False, seed=i), opt)
    # the EMA step of iteration t is taken at the end of iteration t - 1:
    # after 3 steps both teachers are those of iteration 3
    student_w.append(dict(model.student.named_parameters())[name]
                     .detach().clone())
    main = student_w[0]
    mic = student_w[0]
    for t in (1, 2, 3):
        main = min(1 - 1 / (t + 1), 0.999) * main + \
            (1 - min(1 - 1 / (t + 1), 0.999)) * student_w[t]
        mic = min(1 - 1 / (t + 1), 0.5) * mic + \
            (1 - min(1 - 1 / (t + 1), 0.5)) * student_w[t]
    assert torch.allclose(dict(model.teacher.named_parameters())[name], main,
                          atol=1e-6)
    assert torch.allclose(dict(model.mic.teacher.named_parameters())[name],
                          mic, atol=1e-6)
    assert not torch.allclose(main, mic)
    # threshold 1.0: no pixel is that confident -> MIC weight 0; main 1
    _, w = rec.losses[-1][1:]
    assert rec.losses[-1][0] == 'masked' and torch.all(w == 0)
    _, mix_w = [x[1:] for x in rec.losses if x[0] == 'mix'][-1]
    assert torch.all(mix_w == 1)
    assert len(rec.fed('mic_teacher')) == 3
    assert NUM_CLASSES == model.num_classes


# ------------------------------------- jitter saturation / hue, blur draws
def _rgb_hue_chroma(x):
    """Hue (turns) and chroma (max - min) of (N, 3) RGB rows, by hand."""
    r, g, b = x.unbind(-1)
    mx, _ = x.max(-1)
    mn, _ = x.min(-1)
    c = mx - mn
    h = torch.where(mx == r, ((g - b) / c) % 6,
                    torch.where(mx == g, (b - r) / c + 2, (r - g) / c + 4))
    return h / 6, c


def test_jitter_saturation_and_hue_have_reference_ranges():
    """ColorJiggle(s) on one colour (0.55, 0.45, 0.40): brightness (added)
    and contrast (x * c) keep the hue, hue rotates it by h ~ U(-s, s) turns,
    saturation scales HSV's S (V kept) -- so the chroma max - min is
    multiplied by c * f with c, f ~ U(1 - s, 1 + s) whatever the op order,
    and the hue shifts by exactly h. No value reaches a clamp here."""
    torch.manual_seed(2)
    rgb = torch.tensor([0.55, 0.45, 0.40])
    unit = rgb.view(1, 3, 1, 1).expand(2000, 3, 2, 2)
    img = (unit * 255 - MEAN) / STD
    out = _to_unit(strong_transform(img, MEAN, STD, 0.2, 1.0, blur=False,
                                    split='batch'))
    h_in, c_in = _rgb_hue_chroma(rgb[None])
    h_out, c_out = _rgb_hue_chroma(out[:, :, 0, 0])
    shift = (h_out - h_in + 0.5) % 1 - 0.5
    assert shift.abs().max() <= 0.2 + 1e-3
    assert shift.max() > 0.19 and shift.min() < -0.19
    assert abs((shift.abs() > 0.1).float().mean().item() - 0.5) < 0.05
    ratio = (c_out / c_in).numpy()
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.8, 1.2, 10**6) * rng.uniform(0.8, 1.2, 10**6)
    for q in (5, 25, 50, 75, 95):
        assert abs(np.percentile(ratio, q) - np.percentile(ref, q)) < 0.015, q


def _blur_by_hand(x, sigma, ks):
    """Separable Gaussian of size ks (exp(-d^2 / 2 sigma^2), normalised),
    reflected borders (kornia's default, as the reference's
    GaussianBlur2d)."""
    d = torch.arange(ks, dtype=torch.float64) - ks // 2
    k = torch.exp(-d * d / (2 * sigma * sigma))
    k = (k / k.sum()).float()
    c = x.shape[1]
    r = ks // 2
    x = F.pad(x, (r, r, r, r), mode='reflect')
    x = F.conv2d(x, k.view(1, 1, 1, ks).expand(c, 1, 1, ks), groups=c)
    return F.conv2d(x, k.view(1, 1, ks, 1).expand(c, 1, ks, 1), groups=c)


def test_blur_probability_and_sigma_draws():
    """Jitter off: each call blurs with probability 0.5 (U < 0.5) with
    sigma = 0.15 + U(0, 1) and the reference's kernel size, the draws taken
    in order from the generator; re-derived with a twin generator."""
    g = torch.Generator().manual_seed(3)
    twin = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    unit = torch.rand(1, 3, 40, 24)
    img = (unit * 255 - MEAN) / STD
    ks = (blur_kernel_size(40), blur_kernel_size(24))
    assert ks == (3, 3)
    blurred = 0
    for _ in range(200):
        out = _to_unit(strong_transform(img, MEAN, STD, 0.0, 0.0, blur=True,
                                        generator=g))
        on = float(torch.rand((), generator=twin)) < 0.5
        if on:
            sigma = 0.15 + float(torch.rand((), generator=twin))
            exp = _blur_by_hand(unit, sigma, ks[0])
            blurred += 1
        else:
            exp = unit
        assert torch.allclose(out, exp, atol=2e-5)
    assert 70 < blurred < 130


# -------------------------------------------------- ClassMix, right side
def test_class_mix_pastes_the_drawn_classes_not_their_complement():
    """Batch pool {0, 1, 2}: each sample draws ceil(3/2) = 2 classes. Sample
    A holds the three classes on equal thirds, so it pastes exactly 2/3 of
    its pixels (the complement of the draw would be 1/3), with the
    source's labels and weight 1 there; B (only class 0) pastes all or
    nothing."""
    from mmplugins.models.uda.class_mix import class_mix
    gt = torch.zeros(2, 3, 6, dtype=torch.long)
    gt[0, :, 2:4] = 1
    gt[0, :, 4:] = 2
    src = torch.randn(2, 3, 3, 6)
    tgt = torch.randn(2, 3, 3, 6) + 10
    p_lbl = torch.full((2, 3, 6), 4)
    p_w = torch.full((2, 3, 6), 0.3)
    g = torch.Generator().manual_seed(0)
    b_fracs = set()
    for _ in range(30):
        mixed, lbl, w, masks = class_mix(src, tgt, gt, p_lbl, p_w, None,
                                         None, generator=g)
        from_src = (mixed - src).abs().amax(1) < 1e-6
        assert torch.all(from_src | ((mixed - tgt).abs().amax(1) < 1e-6))
        assert from_src[0].float().mean().item() == pytest.approx(2 / 3)
        classes = set(gt[0][from_src[0]].tolist())
        assert len(classes) == 2
        for c in classes:  # whole classes
            assert torch.all(from_src[0][gt[0] == c])
        assert torch.equal(lbl[from_src], gt[from_src])
        assert torch.all(lbl[~from_src] == 4)
        assert torch.all(w[from_src] == 1) and torch.all(w[~from_src] == 0.3)
        b_fracs.add(from_src[1].float().mean().item())
    # B draws 0 with probability 2/3: all or nothing
    assert b_fracs == {0.0, 1.0}


# ------------------------------------------------ MIC strong augmentation
def _mic_out(mode, src, tgt, stats, jitter_prob, n=1):
    from mmplugins.models.uda.masking_consistency import MaskingConsistency
    mic = MaskingConsistency(mode, 1.0, block_size=4, mask_ratio=0.0)
    gt = torch.zeros(src.shape[0], *src.shape[-2:], dtype=torch.long)
    pseudo = (gt, torch.ones(gt.shape))
    jitter = dict(color_jitter_strength=0.2, color_jitter_prob=jitter_prob,
                  gate='batch')
    return [mic(src, gt, tgt, pseudo, stats[0], stats[1], jitter)[0]
            for _ in range(n)]


def test_mic_aug_mode_strongly_augments_the_target_with_its_statistics():
    """'separatetrgaug' (mask ratio 0 here: nothing hidden): the target is
    strongly augmented before masking -- the blur drawn with probability
    0.5 even where the host has blur off and the jitter is off; with the
    jitter on, a grey target stays grey when de-normalised with the
    TARGET's statistics (per-domain normalisation) and moves within the
    hand-derived range; 'separatetrg' leaves it untouched."""
    torch.manual_seed(4)
    t_mean = torch.tensor([60.0, 80.0, 100.0]).view(1, 3, 1, 1)
    t_std = torch.tensor([30.0, 40.0, 50.0]).view(1, 3, 1, 1)
    stats = ((MEAN, STD), (t_mean, t_std))
    src = torch.randn(2, 3, 32, 32)  # blur kernel 3 (1 below 20 px)
    tex = (torch.rand(2, 3, 32, 32) * 255 - t_mean) / t_std
    plain = _mic_out('separatetrg', src, tex, stats, 1.0, n=3)
    assert all(torch.equal(o, tex) for o in plain)
    outs = _mic_out('separatetrgaug', src, tex, stats, 0.0, n=100)
    changed = [(o - tex).abs().max().item() > 1e-3 for o in outs]
    assert 0.3 < np.mean(changed) < 0.7  # blur alone, p = 0.5
    grey = (torch.full((2, 3, 32, 32), 127.5) - t_mean) / t_std
    outs = _mic_out('separatetrgaug', src, grey, stats, 1.0, n=40)
    for o in outs:
        u = (o * t_std + t_mean) / 255.0
        assert torch.allclose(u, u[:, :1, :1, :1].expand_as(u), atol=1e-4)
        assert 0.2 - 1e-4 <= u.min() and u.max() <= 0.84 + 1e-4
    assert np.mean([(((o * t_std + t_mean) / 255.0) - 0.5).abs().max()
                    > 1e-3 for o in outs]) > 0.9
