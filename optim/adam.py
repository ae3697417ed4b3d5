"""Adam, AdamW and AMSGrad over stacked tensors, reproducing torch.optim per config."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optim import _foreach as F
from optim.base import RuleOptimizer


def adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor] | None,
    *,
    step: F.Step,
    lr: F.HParam,
    eps: F.HParam,
    weight_decay: F.HParam,
    beta1: float,
    beta2: float,
    decoupled: bool = False,
) -> None:
    """torch.optim.Adam's rule (ε outside the root); `decoupled` gives AdamW, buffers AMSGrad."""
    if not F.is_zero(weight_decay):
        if decoupled:
            F.mul_(params, 1 - lr * weight_decay)
        else:
            decay = torch._foreach_mul(params, F.per_config(weight_decay, params))
            grads = torch._foreach_add(grads, decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    second = exp_avg_sqs
    if max_exp_avg_sqs is not None:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        second = max_exp_avg_sqs
    denom = torch._foreach_sqrt(second)
    torch._foreach_div_(denom, bias_correction2_sqrt)
    F.add_(denom, eps)
    update = torch._foreach_div(exp_avgs, denom)
    F.mul_(update, lr / bias_correction1)
    torch._foreach_sub_(params, update)


class StackedAdam(RuleOptimizer):
    """Adam (``decoupled=True``: AdamW; ``amsgrad=True``: AMSGrad) on stacked parameters."""

    def __init__(
        self,
        params: Any,
        lr: F.HParam = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: F.HParam = 1e-8,
        weight_decay: F.HParam = 0.0,
        amsgrad: bool = False,
        decoupled: bool = False,
        *,
        stacked: bool = False,
        fused: bool = False,
    ) -> None:
        self.state_keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, decoupled=decoupled
        )
        super().__init__(params, defaults, stacked=stacked, fused=fused)

    def _update(self, group, params, grads, buffers) -> None:
        beta1, beta2 = group["betas"]
        self._rule(adam)(
            params,
            grads,
            buffers["exp_avg"],
            buffers["exp_avg_sq"],
            buffers.get("max_exp_avg_sq"),
            **self._hyper(group, params[0]),
            beta1=beta1,
            beta2=beta2,
            decoupled=group["decoupled"],
        )
