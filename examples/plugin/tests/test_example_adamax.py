"""`example-adamax` is Adamax: a closed-form first step, and torch.optim.Adamax's trajectory."""

from __future__ import annotations

import pytest
import torch
from avatune_example.adamax import Adamax


def test_first_step_is_lr_times_g_over_abs_g_plus_eps() -> None:
    """With m = (1 − β₁)g and u = |g| + ε, the bias-corrected step is α·g/(|g| + ε)."""
    p0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g = torch.tensor([0.3, -4.0, 0.0], dtype=torch.float64)
    p = p0.clone().requires_grad_()
    p.grad = g.clone()
    Adamax([p], lr=0.1, eps=0.01).step()
    torch.testing.assert_close(p.detach(), p0 - 0.1 * g / (g.abs() + 0.01), rtol=0, atol=1e-15)


def test_matches_torch_adamax_over_many_steps_and_groups() -> None:
    """Two param groups with their own α and ε (as avatune's per-config fallback builds
    them), weight decay and betas: the same parameters as torch.optim.Adamax, step by step."""
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=generator, dtype=torch.float64) for _ in range(2)]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    settings = {"betas": (0.8, 0.99), "weight_decay": 0.01}

    def groups(params: list[torch.Tensor]) -> list[dict]:
        return [{"params": [params[0]], "lr": 0.05, "eps": 1e-3}, {"params": [params[1]]}]

    mine = Adamax(groups(ours), lr=0.01, eps=1e-8, **settings)
    reference = torch.optim.Adamax(groups(theirs), lr=0.01, eps=1e-8, foreach=False, **settings)
    for _ in range(25):
        for params, optimizer in ((ours, mine), (theirs, reference)):
            loss = sum(((p - 1) ** 4).sum() + p.sin().sum() for p in params)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="betas"):
        Adamax([torch.zeros(1, requires_grad=True)], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=">= 0"):
        Adamax([torch.zeros(1, requires_grad=True)], lr=-1.0)
