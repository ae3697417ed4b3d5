"""Adam, AdamW and AMSGrad over stacked tensors, reproducing torch.optim per config."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optim import _foreach as F
from optim import adam_cpu
from optim.base import RuleOptimizer
from optim.capturable import fusable, power


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
    fused: bool = False,
    capturable: bool = False,
) -> None:
    """torch.optim.Adam's rule (ε outside the root); `decoupled` gives AdamW, buffers AMSGrad.

    ``fused`` on CPU takes one pass: the C loop of `optim.adam_cpu`, or, for AMSGrad and
    without a C compiler, torch's fused kernel once per config. ``capturable`` (device
    scalars, `optim.capturable`) never takes those host-side kernels.
    """
    lists = (params, grads, exp_avgs, exp_avg_sqs)
    on_cpu = fused and not capturable and all(p.device.type == "cpu" for p in params)
    if on_cpu and (max_exp_avg_sqs is not None or not adam_cpu.supports(*lists)):
        _torch_fused_per_config(
            [*lists, max_exp_avg_sqs or []],
            step=step,
            lr=lr,
            eps=eps,
            weight_decay=weight_decay,
            beta1=beta1,
            beta2=beta2,
            decoupled=decoupled,
        )
        return
    hyper = dict(
        step_size=lr / (1 - beta1**step),
        bias_correction2_sqrt=power(1 - beta2**step, 0.5),
        eps=eps,
        l2=0.0 if decoupled else weight_decay,
        decay=1 - lr * weight_decay if decoupled and not F.is_zero(weight_decay) else None,
        beta1=beta1,
        beta2=beta2,
    )
    if on_cpu:
        adam_cpu.adam_step(*lists, **hyper)
    else:
        fusable(_adam_elementwise, fused)(*lists, max_exp_avg_sqs, **hyper)


def _torch_fused_per_config(
    lists: list[list[Tensor]],
    *,
    step: F.Step,
    lr: F.HParam,
    eps: F.HParam,
    weight_decay: F.HParam,
    beta1: float,
    beta2: float,
    decoupled: bool,
) -> None:
    """torch's fused Adam kernel once per config over its views; `lists` ends with AMSGrad's
    buffers (empty without)."""
    configs = lists[0][0].shape[0]
    lrs, epss, decays = (F.per_config_values(v, configs) for v in (lr, eps, weight_decay))
    steps = [torch.tensor(float(step))] * len(lists[0])
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    for c in range(configs):
        views = [[t[c] for t in ts] for ts in lists]
        # torch's CPU kernel walks each tensor's memory in order, ignoring strides: a
        # transposed gradient (autograd's for a weight used as wᵀ) would be read scrambled
        views[1] = [g.contiguous() for g in views[1]]
        kernel(
            *views,
            steps,
            amsgrad=bool(lists[-1]),
            lr=lrs[c],
            beta1=beta1,
            beta2=beta2,
            weight_decay=decays[c],
            eps=epss[c],
            maximize=False,
        )


def _adam_elementwise(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    *,
    step_size,
    bias_correction2_sqrt,
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
    F.mul_(exp_avg_sqs, beta2)
    F.addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    second = exp_avg_sqs
    if max_exp_avg_sqs is not None:
        F.maximum_(max_exp_avg_sqs, exp_avg_sqs)
        second = max_exp_avg_sqs
    denom = F.sqrt(second)
    F.div_(denom, bias_correction2_sqrt)
    F.add_(denom, eps)
    update = F.div(exp_avgs, denom)
    F.mul_(update, step_size)
    F.sub_(params, update)


class StackedAdam(RuleOptimizer):
    """Adam (``decoupled=True``: AdamW; ``amsgrad=True``: AMSGrad) on stacked parameters."""

    capturable_rule = True

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
        capturable: bool = False,
    ) -> None:
        self.state_keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            decoupled=decoupled,
        )
        super().__init__(params, defaults, stacked=stacked, fused=fused, capturable=capturable)

    def _update(self, group, params, grads, buffers) -> None:
        beta1, beta2 = group["betas"]
        adam(
            params,
            grads,
            buffers["exp_avg"],
            buffers["exp_avg_sq"],
            buffers.get("max_exp_avg_sq"),
            **self._hyper(group, params[0]),
            beta1=beta1,
            beta2=beta2,
            decoupled=group["decoupled"],
            fused=self.fused,
            capturable=self.capturable,
        )
