"""Each optimizer against the closed form in ALGORITHMS.md: float64, 60 steps, rtol 1e-10."""

from __future__ import annotations

import pytest
import torch

from optim import AdaBelief, AvaGrad, AvaGradW, DelayedAdam
from tests.optim import reference as ref
from tests.optim.helpers import grad_fn, run

STEPS = 60
RTOL = 1e-10


def assert_close(actual, expected) -> None:
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("lr,eps", [(0.1, 0.1), (1.0, 1e-3), (1e-3, 10.0)])
def test_avagrad_official(params, lr, eps, wd):
    ours = run(lambda ps: AvaGrad(ps, lr=lr, eps=eps, weight_decay=wd), params, STEPS)
    assert_close(ours, ref.avagrad(params, grad_fn(), STEPS, lr, eps, wd=wd))


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_avagrad_paper(params, wd):
    ours = run(
        lambda ps: AvaGrad(ps, lr=0.05, eps=1e-2, weight_decay=wd, variant="paper"), params, STEPS
    )
    assert_close(ours, ref.avagrad_paper(params, grad_fn(), STEPS, 0.05, 1e-2, wd=wd))


@pytest.mark.parametrize("variant", ["official", "paper"])
def test_avagradw(params, variant):
    ours = run(
        lambda ps: AvaGradW(ps, lr=0.2, eps=0.05, weight_decay=0.1, variant=variant), params, STEPS
    )
    if variant == "official":
        expected = ref.avagrad(params, grad_fn(), STEPS, 0.2, 0.05, wd=0.1, decoupled=True)
    else:
        expected = ref.avagrad_paper(params, grad_fn(), STEPS, 0.2, 0.05, wd=0.1, decoupled=True)
    assert_close(ours, expected)


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_delayed_adam(params, wd):
    ours = run(lambda ps: DelayedAdam(ps, lr=1e-2, eps=1e-6, weight_decay=wd), params, STEPS)
    assert_close(ours, ref.avagrad(params, grad_fn(), STEPS, 1e-2, 1e-6, wd=wd, normalise=False))


@pytest.mark.parametrize("rectify", [False, True])
@pytest.mark.parametrize("decouple", [False, True])
def test_adabelief(params, rectify, decouple):
    opt = lambda ps: AdaBelief(  # noqa: E731
        ps, lr=1e-2, eps=1e-10, weight_decay=0.05, rectify=rectify, weight_decouple=decouple
    )
    ours = run(opt, params, STEPS)
    expected = ref.adabelief(
        params, grad_fn(), STEPS, 1e-2, 1e-10, wd=0.05, decoupled=decouple, rectify=rectify
    )
    assert_close(ours, expected)


def test_no_update_at_first_step_and_gamma_equals_eps(params):
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = AvaGrad(ps, lr=0.3, eps=0.07)
    for p, g in zip(ps, grad_fn()(1, params), strict=True):
        p.grad = g
    opt.step()
    for p, p0 in zip(ps, params, strict=True):
        assert torch.equal(p.detach(), p0), "official AvaGrad must not move at t = 1"
    gamma = opt.param_groups[0]["gamma"]
    torch.testing.assert_close(gamma, torch.tensor([0.07], dtype=torch.float64), rtol=1e-12, atol=0)


def test_gamma_rescales_step_to_lr(params):
    """γ·η has RMS ≈ 1, so lr acts as an SGD step size whatever ε is."""
    trace: list = []
    ref.avagrad(params, grad_fn(), 30, 0.1, 1e-8, trace=trace)
    ours = AvaGrad([p.clone().requires_grad_(True) for p in params], lr=0.1, eps=1e-8)
    for t in range(1, 31):
        for p, g in zip(
            ours.param_groups[0]["params"],
            grad_fn()(t, [p.detach() for p in ours.param_groups[0]["params"]]),
            strict=True,
        ):
            p.grad = g
        ours.step()
        assert ours.param_groups[0]["gamma"].item() == pytest.approx(trace[t - 1][2], rel=1e-10)


def test_avagradw_decays_only_from_second_step():
    p0 = torch.ones(3, dtype=torch.float64)
    p = p0.clone().requires_grad_(True)
    opt = AvaGradW([p], lr=0.5, eps=0.1, weight_decay=0.2)
    p.grad = torch.zeros(3, dtype=torch.float64)
    opt.step()
    assert torch.equal(p.detach(), p0)
    p.grad = torch.zeros(3, dtype=torch.float64)
    opt.step()  # m = 0, so the only change is the decay p·(1 − lr·λ)
    torch.testing.assert_close(p.detach(), p0 * (1 - 0.5 * 0.2), rtol=1e-15, atol=0)


def test_l2_and_decoupled_decay_differ(params):
    l2 = run(lambda ps: AvaGrad(ps, lr=0.1, eps=0.1, weight_decay=0.1), params, 20)
    decoupled = run(lambda ps: AvaGradW(ps, lr=0.1, eps=0.1, weight_decay=0.1), params, 20)
    plain = run(lambda ps: AvaGrad(ps, lr=0.1, eps=0.1), params, 20)
    assert not torch.allclose(l2[0], decoupled[0])
    assert not torch.allclose(l2[0], plain[0])
    assert not torch.allclose(decoupled[0], plain[0])
