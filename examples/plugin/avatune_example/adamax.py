"""`example-adamax`: Adamax (Kingma & Ba 2015, §7.1), a plain `torch.optim.Optimizer`.

Adam with the infinity norm in place of the second moment:

    m ← β₁·m + (1 − β₁)·g        u ← max(β₂·u, |g| + ε)        p ← p − α/(1 − β₁ᵗ) · m / u

Registered in ``avatune.optimizers`` as a class, so a batched run steps it through avatune's
per-config fallback: one param group per configuration, each with its own `lr` and `eps`.
That is why the step reads α and ε from the group, never from `self.defaults`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer


class Adamax(Optimizer):
    """Adamax; ε is the constructor argument `eps` (so a spec needs no `eps_arg`)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(
                f"lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}"
            )
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One Adamax step of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])  # L2, as torch.optim.Adamax
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_inf"] = torch.zeros_like(p)
                state["step"] += 1
                m, u = state["exp_avg"], state["exp_inf"]
                m.lerp_(grad, 1 - beta1)
                torch.maximum(u.mul_(beta2), grad.abs().add_(group["eps"]), out=u)
                p.addcdiv_(m, u, value=-group["lr"] / (1 - beta1 ** state["step"]))
        return loss
