"""AdaBelief (Zhuang et al., NeurIPS 2020) with adabelief-pytorch 0.2.x semantics."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from optim import _foreach as F
from optim.base import RuleOptimizer


def rectification(step: F.Step, beta2: float) -> tuple[F.HParam, F.HParam]:
    """RAdam's variance rectification as (adaptive factor, plain-momentum factor).

    Exactly one is non-zero: the adaptive step once the SMA length N ≥ 5, else the plain
    momentum step that AdaBelief degenerates to early in training.
    """
    beta2_t = beta2**step
    n_max = 2 / (1 - beta2) - 1
    n_sma = n_max - 2 * step * beta2_t / (1 - beta2_t)
    ratio = (1 - beta2_t) * (n_sma - 4) / (n_max - 4) * (n_sma - 2) / n_sma * n_max / (n_max - 2)
    if isinstance(step, Tensor):
        adaptive = n_sma >= 5
        return torch.where(adaptive, ratio.clamp(min=0).sqrt(), 0.0), torch.where(adaptive, 0.0, 1.0)
    return (math.sqrt(ratio), 0.0) if n_sma >= 5 else (0.0, 1.0)


def adabelief(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_vars: list[Tensor],
    *,
    step: F.Step,
    lr: F.HParam,
    eps: F.HParam,
    weight_decay: F.HParam,
    beta1: float,
    beta2: float,
    decoupled: bool = False,
    rectify: bool = False,
) -> None:
    """s ← β2·s + (1−β2)·(g − m)² + ε; p ← p − lr/(1−β1^t) · m / (√s/√(1−β2^t) + ε)."""
    if not F.is_zero(weight_decay):
        if decoupled:
            F.mul_(params, 1 - lr * weight_decay)
        else:
            grads = torch._foreach_add(grads, torch._foreach_mul(params, F.per_config(weight_decay, params)))
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    residuals = torch._foreach_sub(grads, exp_avgs)
    torch._foreach_mul_(exp_avg_vars, beta2)
    torch._foreach_addcmul_(exp_avg_vars, residuals, residuals, value=1 - beta2)
    F.add_(exp_avg_vars, eps)
    bias_correction1 = 1 - beta1**step
    denom = torch._foreach_sqrt(exp_avg_vars)
    if not rectify:
        torch._foreach_div_(denom, (1 - beta2**step) ** 0.5)
        F.add_(denom, eps)
        update = torch._foreach_div(exp_avgs, denom)
        F.mul_(update, lr / bias_correction1)
    else:
        adaptive, plain = rectification(step, beta2)
        F.add_(denom, eps)
        update = torch._foreach_div(exp_avgs, denom)
        F.mul_(update, adaptive / bias_correction1)
        momentum_step = torch._foreach_mul(exp_avgs, plain / bias_correction1)
        torch._foreach_add_(update, momentum_step)
        F.mul_(update, lr)
    torch._foreach_sub_(params, update)


class AdaBelief(RuleOptimizer):
    """AdaBelief; defaults follow the authors' CIFAR advice: no rectification, L2 decay."""

    state_keys = ("exp_avg", "exp_avg_var")

    def __init__(
        self,
        params: Any,
        lr: F.HParam = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: F.HParam = 1e-16,
        weight_decay: F.HParam = 0.0,
        rectify: bool = False,
        weight_decouple: bool = False,
        *,
        stacked: bool = False,
        fused: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            rectify=rectify, weight_decouple=weight_decouple,
        )
        super().__init__(params, defaults, stacked=stacked, fused=fused)

    def _update(self, group, params, grads, buffers) -> None:
        beta1, beta2 = group["betas"]
        self._rule(adabelief)(
            params, grads, buffers["exp_avg"], buffers["exp_avg_var"],
            **self._hyper(group, params[0]),
            beta1=beta1, beta2=beta2,
            decoupled=group["weight_decouple"], rectify=group["rectify"],
        )

