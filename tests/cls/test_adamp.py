"""AdamP / SGDP registered in the mmengine root and equal to adamp's."""
import pytest
import torch

adamp = pytest.importorskip('adamp')


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                               torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                               torch.nn.Linear(64, 2))


def test_adamp_from_optim_wrapper_matches_package():
    from mmengine.optim import build_optim_wrapper
    import mmplugins  # noqa: F401
    ours, ref = _model(), _model()
    wrapper = build_optim_wrapper(
        ours, dict(optimizer=dict(type='AdamP', lr=1e-2, weight_decay=1e-2)))
    assert type(wrapper.optimizer).__name__ == 'AdamP'
    opt = adamp.AdamP(ref.parameters(), lr=1e-2, weight_decay=1e-2)
    x = torch.randn(8, 3, 6, 6)
    for _ in range(3):
        wrapper.update_params(ours(x).pow(2).mean())
        opt.zero_grad()
        ref(x).pow(2).mean().backward()
        opt.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_bad_args():
    from mmengine.registry import OPTIMIZERS
    import mmplugins  # noqa: F401
    with pytest.raises(ValueError, match=r'betas must be two floats .* '
                       r'\(0.9, 1.5\)'):
        OPTIMIZERS.build(dict(type='AdamP', params=_model().parameters(),
                              betas=(0.9, 1.5)))
    opt = OPTIMIZERS.build(dict(type='SGDP', params=_model().parameters(),
                                lr=0.1, momentum=0.9))
    assert isinstance(opt, adamp.SGDP)
