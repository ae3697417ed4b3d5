"""Our optimizers are ordinary torch optimizers: groups, state_dict, schedulers, closures, fused."""

from __future__ import annotations

import copy

import pytest
import torch

from optim import AdaBelief, AvaGrad, AvaGradW, DelayedAdam, StackedAdam, StackedSGD
from tests.optim.helpers import grad_fn, make_params

FACTORIES = {
    "avagrad": lambda ps: AvaGrad(ps, lr=0.1, eps=0.1, weight_decay=1e-3),
    "avagrad-paper": lambda ps: AvaGrad(ps, lr=0.1, eps=0.1, variant="paper"),
    "avagradw": lambda ps: AvaGradW(ps, lr=0.1, eps=0.1, weight_decay=1e-2),
    "delayed_adam": lambda ps: DelayedAdam(ps, lr=1e-2),
    "adabelief": lambda ps: AdaBelief(ps, lr=1e-2, rectify=True),
    "adam-stacked-rule": lambda ps: StackedAdam(ps, lr=1e-2, amsgrad=True),
    "sgd-stacked-rule": lambda ps: StackedSGD(ps, lr=1e-2, momentum=0.9),
}


def step_n(opt, ps, start, n):
    grad = grad_fn()
    for t in range(start, start + n):
        for p, g in zip(ps, grad(t, [p.detach() for p in ps]), strict=True):
            p.grad = g
        opt.step()


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip_resumes_identically(name):
    ps = [p.requires_grad_(True) for p in make_params()]
    opt = FACTORIES[name](ps)
    step_n(opt, ps, 1, 10)
    saved_params = [p.detach().clone() for p in ps]
    saved_state = copy.deepcopy(opt.state_dict())
    step_n(opt, ps, 11, 10)
    expected = [p.detach().clone() for p in ps]

    resumed = [p.clone().requires_grad_(True) for p in saved_params]
    opt2 = FACTORIES[name](resumed)
    opt2.load_state_dict(saved_state)
    step_n(opt2, resumed, 11, 10)
    for a, b in zip(resumed, expected, strict=True):
        assert torch.equal(a.detach(), b)


def test_param_groups_have_their_own_hyperparameters_and_gamma():
    a, b = (p.requires_grad_(True) for p in make_params()[:2])
    opt = AvaGrad([{"params": [a]}, {"params": [b], "lr": 0.01, "eps": 1.0}], lr=0.1, eps=0.1)
    step_n(opt, [a, b], 1, 3)
    g0, g1 = (group["gamma"].item() for group in opt.param_groups)
    assert opt.param_groups[1]["lr"] == 0.01
    assert g0 != g1


def test_lr_scheduler_drives_the_step():
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = AvaGrad([p], lr=1.0, eps=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    lrs = []
    for _ in range(3):
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == [1.0, 0.5, 0.25]


def test_closure_is_evaluated_and_its_loss_returned():
    p = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = AdaBelief([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    assert p.item() < 2.0


def test_negative_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="lr must be >= 0"):
        AvaGrad([torch.zeros(1, requires_grad=True)], lr=-1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["avagrad", "adabelief", "adam"])
def test_fused_path_equals_foreach_path(name):
    """torch.compile'd step (fused=True) computes the same trajectory as the eager rule."""
    from tests.optim.test_stacked import config_grid, run_stacked

    params = make_params()
    lrs, epss = config_grid(4)
    eager = run_stacked(name, params, lrs, epss, steps=12)
    fused = run_stacked(name, params, lrs, epss, steps=12, fused=True)
    for a, b in zip(fused, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
