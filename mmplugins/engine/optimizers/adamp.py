"""AdamP (Heo et al., "AdamP: Slowing Down the Slowdown for Momentum
Optimizers on Scale-invariant Weights", ICLR 2021), from the ``adamp``
package the mask-competition teams used.

With BatchNorm after a conv, the conv weight is scale-invariant and Adam's
updates mostly grow its norm, shrinking the effective step size; AdamP
removes the radial component of the update for such weights. Registered in
the mmengine root optimizer registry so ``optim_wrapper=dict(optimizer=dict(
type='AdamP', lr=1e-3, weight_decay=1e-5))`` works from every toolbox.
The class is only registered when ``adamp`` is installed
(``pip install adamp``; in ``requirements/optional.txt``).
"""
from typing import Tuple

from mmplugins.registry import register_module

try:
    import adamp as _adamp
except ImportError:  # optional dependency: nothing is registered
    _adamp = None

if _adamp is not None:

    @register_module('optimizers')
    class AdamP(_adamp.AdamP):
        """AdamP optimizer (``adamp.AdamP`` with validated arguments).

        Args:
            params: Parameters or parameter groups (filled by mmengine's
                optimizer-wrapper constructor).
            lr (float): Learning rate. Defaults to 1e-3.
            betas (tuple[float, float]): Adam moment coefficients. Defaults
                to ``(0.9, 0.999)``.
            eps (float): Adam epsilon. Defaults to 1e-8.
            weight_decay (float): Decoupled weight decay (AdamW-style
                ``p *= 1 - lr * weight_decay``). Defaults to 0.
            delta (float): Cosine threshold below which a weight counts as
                scale-invariant and its update is projected. Defaults to 0.1.
            wd_ratio (float): Weight-decay multiplier for projected weights.
                Defaults to 0.1.
            nesterov (bool): Nesterov momentum. Defaults to False.
        """

        def __init__(self,
                     params,
                     lr: float = 1e-3,
                     betas: Tuple[float, float] = (0.9, 0.999),
                     eps: float = 1e-8,
                     weight_decay: float = 0.,
                     delta: float = 0.1,
                     wd_ratio: float = 0.1,
                     nesterov: bool = False):
            if lr < 0:
                raise ValueError(f'AdamP: lr must be >= 0, but got {lr}')
            if len(betas) != 2 or not all(0. <= b < 1. for b in betas):
                raise ValueError('AdamP: betas must be two floats in [0, 1), '
                                 f'but got {betas}')
            if weight_decay < 0 or eps <= 0 or delta < 0 or wd_ratio < 0:
                raise ValueError(
                    'AdamP: need weight_decay >= 0, eps > 0, delta >= 0, '
                    f'wd_ratio >= 0, but got weight_decay={weight_decay}, '
                    f'eps={eps}, delta={delta}, wd_ratio={wd_ratio}')
            super().__init__(params, lr=lr, betas=tuple(betas), eps=eps,
                             weight_decay=weight_decay, delta=delta,
                             wd_ratio=wd_ratio, nesterov=nesterov)

    @register_module('optimizers')
    class SGDP(_adamp.SGDP):
        """SGDP optimizer (``adamp.SGDP``: the same projection for SGD).

        Args:
            params: Parameters or parameter groups.
            lr (float): Learning rate (required, > 0).
            momentum (float): Momentum. Defaults to 0.
            dampening (float): Momentum dampening. Defaults to 0.
            weight_decay (float): L2 weight decay. Defaults to 0.
            nesterov (bool): Nesterov momentum. Defaults to False.
            eps (float): Epsilon of the cosine. Defaults to 1e-8.
            delta (float): Scale-invariance threshold. Defaults to 0.1.
            wd_ratio (float): Weight-decay multiplier for projected weights.
                Defaults to 0.1.
        """

        def __init__(self,
                     params,
                     lr: float,
                     momentum: float = 0.,
                     dampening: float = 0.,
                     weight_decay: float = 0.,
                     nesterov: bool = False,
                     eps: float = 1e-8,
                     delta: float = 0.1,
                     wd_ratio: float = 0.1):
            if lr <= 0 or momentum < 0 or weight_decay < 0:
                raise ValueError(
                    'SGDP: need lr > 0, momentum >= 0, weight_decay >= 0, '
                    f'but got lr={lr}, momentum={momentum}, '
                    f'weight_decay={weight_decay}')
            super().__init__(params, lr=lr, momentum=momentum,
                             dampening=dampening, weight_decay=weight_decay,
                             nesterov=nesterov, eps=eps, delta=delta,
                             wd_ratio=wd_ratio)
