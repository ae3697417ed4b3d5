"""AdaBelief (Zhuang et al., NeurIPS 2020) with adabelief-pytorch 0.2.x semantics."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from optim import _foreach as F
from optim.base import RuleOptimizer
from optim.capturable import fusable, power
from optim.radam import rectification


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
    fused: bool = False,
) -> None:
    """s ← β2·s + (1−β2)·(g − m)² + ε; p ← p − lr/(1−β1^t) · m / (√s/√(1−β2^t) + ε)."""
    step_size = lr / (1 - beta1**step)
    if rectify:
        adaptive, plain = rectification(step, beta2, inclusive=True)
        scales = {"adaptive": adaptive * step_size, "plain": plain * step_size, "correction": 1.0}
    else:
        scales = {"adaptive": step_size, "plain": None, "correction": power(1 - beta2**step, -0.5)}
    fusable(_adabelief_elementwise, fused)(
        params,
        grads,
        exp_avgs,
        exp_avg_vars,
        **scales,
        eps=eps,
        l2=0.0 if decoupled else weight_decay,
        decay=1 - lr * weight_decay if decoupled and not F.is_zero(weight_decay) else None,
        beta1=beta1,
        beta2=beta2,
    )


def _adabelief_elementwise(
    params,
    grads,
    exp_avgs,
    exp_avg_vars,
    *,
    adaptive,
    plain,
    correction,
    eps,
    l2,
    decay,
    beta1,
    beta2,
) -> None:
    if decay is not None:
        F.mul_(params, decay)
    if not F.is_zero(l2):
        grads = F.add(grads, F.mul(params, l2))
    F.lerp_(exp_avgs, grads, 1 - beta1)
    residuals = F.sub(grads, exp_avgs)
    F.mul_(exp_avg_vars, beta2)
    F.addcmul_(exp_avg_vars, residuals, residuals, value=1 - beta2)
    F.add_(exp_avg_vars, eps)
    denom = F.sqrt(exp_avg_vars)
    F.mul_(denom, correction)
    F.add_(denom, eps)
    update = F.div(exp_avgs, denom)
    F.mul_(update, adaptive)
    if plain is not None:
        F.add_(update, F.mul(exp_avgs, plain))
    F.sub_(params, update)


class AdaBelief(RuleOptimizer):
    """AdaBelief; defaults follow the authors' CIFAR advice: no rectification, L2 decay."""

    capturable_rule = True

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
        capturable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            rectify=rectify,
            weight_decouple=weight_decouple,
        )
        super().__init__(params, defaults, stacked=stacked, fused=fused, capturable=capturable)

    def _update(self, group, params, grads, buffers) -> None:
        beta1, beta2 = group["betas"]
        adabelief(
            params,
            grads,
            buffers["exp_avg"],
            buffers["exp_avg_var"],
            **self._hyper(group, params[0]),
            beta1=beta1,
            beta2=beta2,
            decoupled=group["weight_decouple"],
            rectify=group["rectify"],
            fused=self.fused,
        )
