"""RAdam (Liu et al., ICLR 2020) on stacked parameters: torch.optim.RAdam's rule per config.

One multi-tensor pass per step over all configs (launches scale with the number of tensors,
not with C), replacing the per-config fallback that stepped C torch optimizers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from optim import _foreach as F
from optim.base import RuleOptimizer


def rectification(
    step: F.Step, beta2: float, *, inclusive: bool = False
) -> tuple[F.HParam, F.HParam]:
    """RAdam's variance rectification as (adaptive factor r_t·√(1−β2^t), plain-momentum
    factor); exactly one is non-zero.

    The adaptive step is taken once the SMA length ρ_t exceeds 5 (torch.optim.RAdam), or
    reaches it with `inclusive` (adabelief-pytorch's rectified AdaBelief), else plain
    momentum. A tensor step (fused or capturable steps) selects with torch.where: no host
    sync.
    """
    bias_correction2 = 1 - beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2**step / bias_correction2
    ratio = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
    if isinstance(step, Tensor):
        rect = ratio.clamp(min=0).sqrt() * bias_correction2.sqrt()
        adaptive = rho_t >= 5 if inclusive else rho_t > 5
        return torch.where(adaptive, rect, 0.0), torch.where(adaptive, 0.0, 1.0)
    if not (rho_t >= 5 if inclusive else rho_t > 5):
        return 0.0, 1.0
    return math.sqrt(ratio) * math.sqrt(bias_correction2), 0.0


def radam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    step: F.Step,
    lr: F.HParam,
    eps: F.HParam,
    weight_decay: F.HParam,
    beta1: float,
    beta2: float,
    decoupled: bool = False,
    fused: bool = False,
) -> None:
    """m, v as Adam; p ← p − lr/(1−β1^t)·m·(r_t·√(1−β2^t)/(√v + ε) once ρ_t > 5, else 1)."""
    adaptive, plain = rectification(step, beta2)
    step_size = lr / (1 - beta1**step)
    F.fusable(_radam_elementwise, fused)(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        adaptive=None if F.is_zero(adaptive) else adaptive * step_size,
        plain=None if F.is_zero(plain) else plain * step_size,
        eps=eps,
        l2=0.0 if decoupled else weight_decay,
        decay=1 - lr * weight_decay if decoupled and not F.is_zero(weight_decay) else None,
        beta1=beta1,
        beta2=beta2,
    )


def _radam_elementwise(
    params, grads, exp_avgs, exp_avg_sqs, *, adaptive, plain, eps, l2, decay, beta1, beta2
) -> None:
    if decay is not None:
        F.mul_(params, decay)
    if not F.is_zero(l2):
        grads = F.add(grads, F.mul(params, l2))
    F.lerp_(exp_avgs, grads, 1 - beta1)
    F.mul_(exp_avg_sqs, beta2)
    F.addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    if adaptive is None:
        update = F.mul(exp_avgs, plain)
    else:
        denom = F.sqrt(exp_avg_sqs)
        F.add_(denom, eps)
        update = F.div(exp_avgs, denom)
        F.mul_(update, adaptive)
        if plain is not None:
            F.add_(update, F.mul(exp_avgs, plain))
    F.sub_(params, update)


class RAdam(RuleOptimizer):
    """torch.optim.RAdam (``decoupled_weight_decay=True``: RAdamW) on stacked parameters."""

    capturable_rule = True

    state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Any,
        lr: F.HParam = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: F.HParam = 1e-8,
        weight_decay: F.HParam = 0.0,
        decoupled_weight_decay: bool = False,
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
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults, stacked=stacked, fused=fused, capturable=capturable)

    def _update(self, group, params, grads, buffers) -> None:
        beta1, beta2 = group["betas"]
        radam(
            params,
            grads,
            buffers["exp_avg"],
            buffers["exp_avg_sq"],
            **self._hyper(group, params[0]),
            beta1=beta1,
            beta2=beta2,
            decoupled=group["decoupled_weight_decay"],
            fused=self.fused,
        )
