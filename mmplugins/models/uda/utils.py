"""Reference semantics of DACS/DAFormer/MIC as pure functions.

Everything here is stateless (randomness comes from an explicit
``torch.Generator``/``numpy.random.Generator`` or the global RNGs that
mmengine seeds), so each piece is unit-tested against hand-computed values.
The only stateful part of UDA, the training step, lives in
:class:`mmplugins.models.uda.UDASegmentor`.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor


# --------------------------------------------------------------------- EMA
#: ``UDASegmentor(teacher_buffers=...)``: the teacher's buffers are its own
#: (reference) or copied from the student at every EMA step
TEACHER_BUFFERS = ('own', 'student')


def ema_alpha(iteration: int, alpha: float = 0.999) -> float:
    """Teacher decay at ``iteration``: ``min(1 - 1 / (t + 1), alpha)``.

    At t=0 the teacher is a plain copy of the student; the ramp lets the
    teacher follow the fast-changing student early in training (DACS).
    Note mmengine's EMAHook uses ``momentum = 1 - decay`` and no ramp.
    """
    if iteration < 0:
        raise ValueError(f'iteration must be >= 0, but got {iteration}')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], but got {alpha}')
    return min(1.0 - 1.0 / (iteration + 1), alpha)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module,
               alpha: float, copy_buffers: bool = False) -> None:
    """``θ_t ← α θ_t + (1 − α) θ_s`` for the parameters.

    Args:
        copy_buffers (bool): Also copy the student's buffers (BN running
            statistics, counters) into the teacher. Defaults to False, the
            reference (DACS ``_update_ema``: parameters only): the
            teacher's buffers then evolve through its own forward passes
            (pseudo-labelling the target in train mode, its BN layers
            updating their running statistics from the target batches).
    """
    t_params = [t.data for t in teacher.parameters()]
    s_params = [s.data for s in student.parameters()]
    if len(t_params) != len(s_params):
        raise ValueError('ema_update: teacher and student differ in their '
                         f'number of parameters ({len(t_params)} vs '
                         f'{len(s_params)})')
    # one fused multi-tensor op instead of a kernel pair per parameter
    # (982 parameters for MiT-B5 + DAFormer head)
    torch._foreach_mul_(t_params, alpha)
    torch._foreach_add_(t_params, s_params, alpha=1 - alpha)
    if copy_buffers:
        for t, s in zip(teacher.buffers(), student.buffers()):
            t.data.copy_(s.data)


@torch.no_grad()
def copy_weights(dst: torch.nn.Module, src: torch.nn.Module,
                 buffers: bool = True) -> None:
    """Exact copy of the parameters (and of the buffers unless
    ``buffers=False``, the reference's ``_init_ema_weights``)."""
    for d, s in zip(dst.parameters(), src.parameters()):
        d.data.copy_(s.data)
    if buffers:
        for d, s in zip(dst.buffers(), src.buffers()):
            d.data.copy_(s.data)


# ----------------------------------------------------------- pseudo-labels
def pseudo_label_and_weight(
        logits: Tensor,
        threshold: Optional[float] = 0.968,
        ignore_top: int = 0,
        ignore_bottom: int = 0,
        valid_mask: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor, Tensor]:
    """Teacher logits -> (pseudo-label, pixel weight, scalar weight).

    Reference (DACS as used by DAFormer/MIC): the label is the argmax; the
    weight is ONE scalar per batch, the fraction of all the batch's pixels
    whose max softmax probability reaches ``threshold``, broadcast to every
    pixel. Pixels in ignored margins (``ignore_top``/``ignore_bottom`` rows
    of the crop) or outside ``valid_mask`` get weight 0 -- after the scalar
    is computed, as in the reference (``filter_valid_pseudo_region``).

    Args:
        logits (Tensor): (N, C, H, W) teacher logits.
        threshold (float, optional): Confidence threshold. ``None``: every
            pixel has weight 1 (scalar 1) before the margins and the valid
            mask -- the reference's MIC teacher with
            ``mask_pseudo_threshold=None`` (``EMATeacher``).
        valid_mask (Tensor, optional): (N, H, W) (or (N, 1, H, W)) mask of
            trusted pixels (HRDA's dataset-level ``crop_pseudo_margins``);
            the weight is multiplied by it. Like the reference, it cannot be
            combined with ``ignore_top``/``ignore_bottom``.
    Returns:
        tuple: label (N, H, W) long, weight (N, H, W) float, scalar (0-dim).
    """
    if logits.dim() != 4:
        raise ValueError(f'logits must be (N, C, H, W), got {logits.shape}')
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f'threshold must be in [0, 1] or None, got '
                         f'{threshold}')
    prob = torch.softmax(logits.detach().float(), dim=1)
    max_prob, label = prob.max(dim=1)
    if threshold is None:
        scalar = max_prob.new_ones(())
    else:
        confident = (max_prob >= threshold).float()
        scalar = confident.sum() / confident.numel()
    weight = scalar * torch.ones_like(max_prob)
    if valid_mask is not None and (ignore_top > 0 or ignore_bottom > 0):
        raise ValueError(
            'pseudo_weight_ignore_top/bottom (model, rows of every crop: '
            f'{ignore_top}/{ignore_bottom}) cannot be combined with the '
            'dataset-level valid-pseudo-label mask (train_dataloader.dataset.'
            'target.crop_pseudo_margins), as in the reference (HRDA asserts '
            'it): set pseudo_weight_ignore_top/bottom=0 and give the margins '
            'in crop_pseudo_margins')
    h, w = weight.shape[-2:]
    if ignore_top > 0:
        weight[:, :ignore_top, :] = 0
    if ignore_bottom > 0:
        weight[:, h - ignore_bottom:, :] = 0
    if valid_mask is not None:
        if valid_mask.dim() == 4 and valid_mask.shape[1] == 1:
            valid_mask = valid_mask[:, 0]
        if valid_mask.shape != weight.shape:
            raise ValueError(
                f'valid_mask has shape {tuple(valid_mask.shape)}, the '
                f'pseudo weight {tuple(weight.shape)}; expected (N, H, W) of '
                'the target batch')
        weight = weight * valid_mask.to(weight.dtype)
    return label, weight, scalar


def check_choice(key: str, value, allowed: Sequence) -> None:
    """One clear error naming the config key when ``value`` is not one of
    ``allowed``."""
    if value not in allowed:
        raise ValueError(f'{key} must be one of {tuple(allowed)}, got '
                         f'{value!r}')


# ------------------------------------------------------------- class mix
CLASS_MIX_POOLS = ('batch', 'sample')


def class_mix_masks(labels: Tensor,
                    ignore_index: int = 255,
                    generator: Optional[torch.Generator] = None,
                    pool: str = 'batch') -> Tensor:
    """DACS ClassMix masks: per sample, ceil(n/2) classes of a pool of n.

    Args:
        labels (Tensor): (N, H, W) or (N, 1, H, W) source labels.
        ignore_index (int): Label id of ignored pixels.
        generator (torch.Generator, optional): RNG of the class draw.
        pool (str): Where the n candidate classes come from.

            - ``'batch'`` (reference, DACS/DAFormer/MIC): ``torch.unique``
              over the labels of the *whole batch*, the ignore id included;
              every sample draws ``ceil(n/2)`` of that common pool without
              replacement, so a sample may draw classes it does not contain
              (it then pastes fewer pixels, possibly none), and drawing the
              ignore id pastes the source's ignored pixels.
            - ``'sample'``: each sample's own classes without the ignore id,
              so it always pastes ``ceil(n_i/2)`` of its ``n_i`` classes.

    Returns:
        Tensor: (N, 1, H, W) float mask, 1 where a source pixel is pasted.
    """
    check_choice('class_mix_pool', pool, CLASS_MIX_POOLS)
    if labels.dim() == 4:
        labels = labels[:, 0]
    batch_classes = torch.unique(labels) if pool == 'batch' else None
    masks = []
    for lbl in labels:
        if pool == 'batch':
            classes = batch_classes
        else:
            classes = torch.unique(lbl)
            classes = classes[classes != ignore_index]
        n = classes.numel()
        if n == 0:
            masks.append(torch.zeros_like(lbl, dtype=torch.float32))
            continue
        k = (n + n % 2) // 2  # ceil(n / 2)
        perm = torch.randperm(n, generator=generator,
                              device='cpu')[:k].to(classes.device)
        masks.append(torch.isin(lbl, classes[perm]).float())
    return torch.stack(masks)[:, None]


def one_mix(mask: Tensor, foreground: Tensor, background: Tensor) -> Tensor:
    """``mask * foreground + (1 - mask) * background`` with broadcasting."""
    mask = mask.to(foreground.dtype)
    while mask.dim() < foreground.dim():
        mask = mask.unsqueeze(1)
    return mask * foreground + (1 - mask) * background


# ---------------------------------------------------------- strong aug
def resolve_jitter_prob(prob: Optional[float] = None,
                        probability: Optional[float] = None,
                        p: Optional[float] = None) -> float:
    """The probability that the strong-aug jitter is applied, from one of
    ``color_jitter_prob`` (that probability), ``color_jitter_probability``
    or ``color_jitter_p`` (the reference's threshold: applied when
    U(0, 1) > value). Default 0.8 (the reference's 0.2)."""
    given = {k: v for k, v in (('color_jitter_prob', prob),
                               ('color_jitter_probability', probability),
                               ('color_jitter_p', p)) if v is not None}
    if len(given) > 1:
        raise ValueError(
            f'UDASegmentor: give one of {sorted(given)}, not several: '
            '`color_jitter_prob` is the probability that the jitter is '
            'applied; `color_jitter_probability` / `color_jitter_p` are '
            "the reference's threshold (applied when U > value), so "
            '0.8 of the first means 0.2 of the others')
    if not given:
        return 0.8  # the reference's threshold 0.2
    (key, value), = given.items()
    if not 0 <= value <= 1:
        raise ValueError(f'{key} must be in [0, 1], got {value}')
    return value if key == 'color_jitter_prob' else 1.0 - value


STRONG_AUG_GATES = ('batch', 'sample')
STRONG_AUG_SPLITS = ('sample', 'batch')


def blur_kernel_size(length: int) -> int:
    """The reference's odd Gaussian kernel of ~10 % of a side:
    ``ceil(0.1 L)`` if that is odd, else one less."""
    c = math.ceil(0.1 * length)
    return max(c if c % 2 == 1 else c - 1, 1)


def _jitter_and_blur(x: Tensor, s: float, jitter: bool, sigma: Optional[float]
                     ) -> Tensor:
    """One reference augmentation call on ``x`` in [0, 1]: kornia's
    ColorJiggle (factors per sample, one op order per call), then a Gaussian
    blur with one ``sigma`` for the call."""
    import kornia
    if jitter:
        # kornia 0.5.8's ColorJitter as the reference ran it: additive
        # brightness, contrast x*c, saturation in HSV, hue shift; current
        # kornia keeps exactly these semantics as ColorJiggle
        x = kornia.augmentation.ColorJiggle(
            brightness=s, contrast=s, saturation=s, hue=s, p=1.0)(x)
    if sigma is not None:
        ks = (blur_kernel_size(x.shape[-2]), blur_kernel_size(x.shape[-1]))
        x = kornia.filters.gaussian_blur2d(x, ks, (sigma, sigma))
    return x


def strong_transform(img: Tensor,
                     mean: Tensor,
                     std: Tensor,
                     color_jitter_strength: float = 0.2,
                     color_jitter_prob: float = 0.8,
                     blur: bool = True,
                     blur_prob: float = 0.5,
                     gate: str = 'batch',
                     split: str = 'sample',
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """DACS strong augmentation (colour jitter + Gaussian blur) on a
    normalised batch, with the reference's semantics by default.

    The image is de-normalised with ``mean``/``std`` (broadcastable to
    ``img``, so a per-pixel mix of two domains' statistics works), augmented
    in [0, 1] and normalised back.

    - On/off (``gate``): ``'batch'`` (reference) draws once per batch
      whether the jitter (probability ``color_jitter_prob``; the reference's
      ``color_jitter_p=0.2`` threshold means 0.8) and the blur (probability
      ``blur_prob``) are applied; ``'sample'`` draws both per sample.
    - Jitter: kornia ``ColorJiggle`` with brightness, contrast, saturation
      and hue all ``color_jitter_strength``: brightness additive
      ``x + b``, contrast ``x * c``, saturation in HSV, hue shift; factors
      per sample, op order per call.
    - Blur: sigma ~ U(0.15, 1.15) per call, odd kernel of ~10 % of each
      side (:func:`blur_kernel_size`).
    - Calls (``split``): ``'sample'`` runs one call per sample (own op order
      and sigma) -- the reference's ClassMix path, which augments each mixed
      image separately; ``'batch'`` one call for the whole batch (one order,
      one sigma) -- the reference's MIC masked path.

    The jitter factors and op order come from torch's global RNG (kornia
    has no generator argument); the on/off and sigma draws from
    ``generator`` when given.
    """
    check_choice('strong_aug_gate', gate, STRONG_AUG_GATES)
    check_choice('split', split, STRONG_AUG_SPLITS)

    def rand() -> float:
        return float(torch.rand((), generator=generator))

    n = img.shape[0]
    if gate == 'batch':
        jit = color_jitter_strength > 0 and rand() < color_jitter_prob
        blr = blur and rand() < blur_prob
        jitter_on, blur_on = [jit] * n, [blr] * n
    else:
        jitter_on, blur_on = [], []
        for _ in range(n):
            jitter_on.append(color_jitter_strength > 0
                             and rand() < color_jitter_prob)
            blur_on.append(blur and rand() < blur_prob)
    x = ((img * std + mean) / 255.0).clamp(0, 1)
    if split == 'batch' and gate == 'batch':
        groups = [list(range(n))]
    else:
        groups = [[i] for i in range(n)]
    out = []
    for idx in groups:
        i = idx[0]
        sigma = 0.15 + rand() if blur_on[i] else None
        xi = x[idx]
        if jitter_on[i] or sigma is not None:
            xi = _jitter_and_blur(xi, color_jitter_strength, jitter_on[i],
                                  sigma)
        out.append(xi)
    x = torch.cat(out) * 255.0
    return (x - mean) / std


def denormalize(img: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """(N, 3, H, W) normalised -> uint8-range float."""
    return (img * std + mean).clamp(0, 255)


def palette_for(num_classes: int,
                palette: Optional[List[Sequence[int]]] = None) -> Tensor:
    """(num_classes + 1, 3) uint8 colours; the last row is for 'ignore'."""
    if palette is not None and len(palette) >= num_classes:
        colours = torch.tensor([list(p) for p in palette[:num_classes]],
                               dtype=torch.uint8)
    else:
        g = torch.Generator().manual_seed(42)
        colours = torch.randint(0, 256, (num_classes, 3), generator=g,
                                dtype=torch.uint8)
    return torch.cat([colours, torch.zeros(1, 3, dtype=torch.uint8)])


def colorize(label: Tensor, palette: Tensor, ignore_index: int = 255
             ) -> Tensor:
    """(H, W) label -> (H, W, 3) uint8 using ``palette`` (last row=ignore)."""
    idx = label.clone().long()
    idx[(idx == ignore_index) | (idx >= palette.shape[0] - 1)
        | (idx < 0)] = palette.shape[0] - 1
    return palette.to(label.device)[idx]
