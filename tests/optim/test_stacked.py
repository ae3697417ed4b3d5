"""Stacked (batched) optimizers: C configs in one tensor behave like C separate optimizers."""

from __future__ import annotations

import pytest
import torch

from optim import OPTIMIZERS, get_optimizer
from optim.registry import one_pass_on_cpu
from tests.optim.helpers import grad_fn, make_params

C = 16
STEPS = 40


def config_grid(c: int = C) -> tuple[torch.Tensor, torch.Tensor]:
    lrs = torch.logspace(-4, -1, c, dtype=torch.float64)
    epss = torch.logspace(-8, 0, c, dtype=torch.float64).flip(0)
    return lrs, epss


def run_separate(name, params, lrs, epss, steps=STEPS):
    finals = []
    for c in range(len(lrs)):
        ps = [p.clone().requires_grad_(True) for p in params]
        opt = get_optimizer(name, ps, lr=float(lrs[c]), eps=float(epss[c]))
        grad = grad_fn(seed=c)
        for t in range(1, steps + 1):
            for p, g in zip(ps, grad(t, [p.detach() for p in ps]), strict=True):
                p.grad = g
            opt.step()
        finals.append([p.detach() for p in ps])
    return finals


def run_stacked(name, params, lrs, epss, steps=STEPS, fused=False, **settings):
    stacked = [
        p.unsqueeze(0).repeat(len(lrs), *([1] * p.dim())).requires_grad_(True) for p in params
    ]
    opt = get_optimizer(name, stacked, lr=lrs, eps=epss, stacked=True, fused=fused, **settings)
    grads = [grad_fn(seed=c) for c in range(len(lrs))]
    for t in range(1, steps + 1):
        per_config = [grads[c](t, [p[c].detach() for p in stacked]) for c in range(len(lrs))]
        for i, p in enumerate(stacked):
            p.grad = torch.stack([per_config[c][i] for c in range(len(lrs))])
        opt.step()
    return [p.detach() for p in stacked]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_batched_equals_separate(name):
    params = make_params()
    lrs, epss = config_grid()
    separate = run_separate(name, params, lrs, epss)
    stacked = run_stacked(name, params, lrs, epss)
    for c in range(C):
        for i in range(len(params)):
            torch.testing.assert_close(stacked[i][c], separate[c][i], rtol=1e-10, atol=1e-12)


ONE_PASS = sorted(name for name in OPTIMIZERS if one_pass_on_cpu(name, {}))
DIVERGENCE_CASES = [(name, False) for name in sorted(OPTIMIZERS)] + [(n, True) for n in ONE_PASS]


@pytest.mark.parametrize(("name", "fused"), DIVERGENCE_CASES)
def test_divergent_config_leaves_others_bit_identical(name, fused):
    params = make_params()
    lrs, epss = config_grid(8)
    baseline = run_stacked(name, params, lrs, epss, steps=15, fused=fused)
    wild = lrs.clone()
    wild[3] = 1e300
    diverged = run_stacked(name, params, wild, epss, steps=15, fused=fused)
    blew_up = [
        not torch.isfinite(p[3]).all() or (p[3] - b[3]).abs().max() > 1
        for p, b in zip(diverged, baseline, strict=True)
    ]
    assert any(blew_up), "config 3 was meant to diverge"
    for c in range(8):
        if c == 3:
            continue
        for p, b in zip(diverged, baseline, strict=True):
            assert torch.equal(p[c], b[c]), f"config {c} changed when config 3 diverged"


@pytest.mark.parametrize("name", ONE_PASS)
def test_one_pass_cpu_step_equals_the_eager_rule(name):
    """fused=True on CPU (a C loop or torch's fused Adam per config), weight decay per config."""
    params = make_params()
    lrs, epss = config_grid(8)
    decay = torch.logspace(-4, -1, 8, dtype=torch.float64)
    eager = run_stacked(name, params, lrs, epss, steps=20, weight_decay=decay)
    fused = run_stacked(name, params, lrs, epss, steps=20, fused=True, weight_decay=decay)
    for a, b in zip(fused, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_registry_knows_which_optimizers_use_eps():
    from optim import uses_eps

    assert not uses_eps("sgd")
    assert all(uses_eps(name) for name in OPTIMIZERS if name != "sgd")
    p = torch.zeros(2, requires_grad=True)
    assert get_optimizer("sgd", [p], lr=0.1, eps=123.0).param_groups[0]["momentum"] == 0.9


def test_unknown_optimizer_names_the_known_ones():
    with pytest.raises(ValueError, match="avagrad"):
        get_optimizer("adamax", [torch.zeros(1, requires_grad=True)])


def test_tensor_hyperparameters_need_stacked():
    with pytest.raises(ValueError, match="stacked=True"):
        get_optimizer("adam", [torch.zeros(1, requires_grad=True)], lr=torch.ones(3))


def test_studies_default_eps_repeats_the_registry():
    """The server-side copy (studies.specs, no torch) names each optimizer's default ε."""
    from optim.registry import optimizer_info
    from studies.specs import DEFAULT_EPS

    assert set(DEFAULT_EPS) == set(OPTIMIZERS)
    for name in OPTIMIZERS:
        info = optimizer_info(name)
        assert DEFAULT_EPS[name] == (info.default_eps if info.uses_eps else None), name
