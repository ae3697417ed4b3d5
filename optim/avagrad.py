"""AvaGrad (Savarese et al., CVPR 2021): Adam with a one-step-delayed, normalised preconditioner.

`variant="official"` is the authors' released code (what the paper's experiments ran);
`variant="paper"` is Algorithm 2 as printed. See ALGORITHMS.md for both rules.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from optim import _foreach as F
from optim import avagrad_cpu
from optim.base import RuleOptimizer

Variant = Literal["official", "paper"]


def avagrad(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    step: F.Step,
    first_step: bool,
    gamma: F.HParam,
    lr: F.HParam,
    eps: F.HParam,
    weight_decay: F.HParam,
    beta1: float,
    beta2: float,
    decoupled: bool = False,
    normalise: bool = True,
    fused: bool = False,
) -> Tensor:
    """Official AvaGrad step; returns the per-config γ (shape [C]) for the next step.

    The update uses v_{t-1} (taken before v is written), so no update happens at t = 1.
    ``normalise=False`` fixes γ = 1 (Delayed Adam); ``decoupled`` applies AvaGradW's decay.
    """
    moving = not first_step
    lists = (params, grads, exp_avgs, exp_avg_sqs)
    body = (
        avagrad_cpu.avagrad_step
        if fused and avagrad_cpu.supports(*lists)
        else F.fusable(_avagrad_elementwise, fused)
    )
    inverse_squares = body(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        moving=moving,
        step_size=gamma * lr / (1 - beta1**step),
        delayed_correction=(1 - beta2 ** (step - 1)) ** -0.5 if moving else 0.0,
        correction=(1 - beta2**step) ** -0.5,
        eps=eps,
        l2=0.0 if decoupled else weight_decay,
        decay=1 - lr * weight_decay
        if decoupled and moving and not F.is_zero(weight_decay)
        else None,
        beta1=beta1,
        beta2=beta2,
        normalise=normalise,
    )
    if inverse_squares is None:
        return torch.ones(params[0].shape[0], dtype=params[0].dtype, device=params[0].device)
    return torch.rsqrt(inverse_squares / F.elements_per_config(params))


def _avagrad_elementwise(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    *,
    moving,
    step_size,
    delayed_correction,
    correction,
    eps,
    l2,
    decay,
    beta1,
    beta2,
    normalise,
) -> Tensor | None:
    """One pass over memory: update with v_{t-1}, write v_t, and sum q⁻² for the next γ."""
    if not F.is_zero(l2):
        grads = F.add(grads, F.mul(params, l2))
    F.lerp_(exp_avgs, grads, 1 - beta1)
    roots = F.sqrt(exp_avg_sqs)
    if moving:
        denom = F.mul(roots, delayed_correction)
        F.add_(denom, eps)
        if decay is not None:
            F.mul_(params, decay)
        update = F.div(exp_avgs, denom)
        F.mul_(update, step_size)
        F.sub_(params, update)
    F.mul_(exp_avg_sqs, beta2)
    F.addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    if not normalise:
        return None
    # q = s / sqrt(1 - β2^t) + ε with the *old* s: the official code's quirk, kept on purpose.
    F.mul_(roots, correction)
    F.add_(roots, eps)
    F.reciprocal_(roots)
    # summed per config in float64 (independent of C), rounded like the C loop's sums
    return F.config_sum(F.mul(roots, roots)).to(params[0].dtype)


def avagrad_paper(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    lr: F.HParam,
    eps: F.HParam,
    weight_decay: F.HParam,
    beta1: float,
    beta2: float,
    decoupled: bool = False,
    fused: bool = False,
) -> None:
    """Algorithm 2 of the paper: η = 1/(√v_{t-1} + ε), step lr·(η/(‖η‖/√d))⊙m from t = 1."""
    F.fusable(_avagrad_paper_body, fused)(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        lr=lr,
        eps=eps,
        weight_decay=weight_decay,
        beta1=beta1,
        beta2=beta2,
        decoupled=decoupled,
    )


def _avagrad_paper_body(
    params, grads, exp_avgs, exp_avg_sqs, *, lr, eps, weight_decay, beta1, beta2, decoupled
) -> None:
    if not F.is_zero(weight_decay):
        if decoupled:
            F.mul_(params, 1 - lr * weight_decay)
        else:
            grads = F.add(grads, F.mul(params, weight_decay))
    F.lerp_(exp_avgs, grads, 1 - beta1)
    etas = F.sqrt(exp_avg_sqs)
    F.add_(etas, eps)
    F.reciprocal_(etas)
    squares = F.config_sum(F.mul(etas, etas)).to(params[0].dtype)
    rms = torch.sqrt(squares / F.elements_per_config(params))
    update = F.mul(etas, exp_avgs)
    F.mul_(update, lr / rms)
    F.sub_(params, update)
    F.mul_(exp_avg_sqs, beta2)
    F.addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)


class AvaGrad(RuleOptimizer):
    """AvaGrad with L2 weight decay folded into the gradient.

    `lr` acts like an SGD learning rate (γ rescales the adaptive step to unit RMS), so its
    good values do not move when `eps` changes: the separability this project measures.
    """

    state_keys = ("exp_avg", "exp_avg_sq")
    decoupled = False
    normalise = True

    def __init__(
        self,
        params: Any,
        lr: F.HParam = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: F.HParam = 0.1,
        weight_decay: F.HParam = 0.0,
        variant: Variant = "official",
        *,
        stacked: bool = False,
        fused: bool = False,
    ) -> None:
        if variant not in ("official", "paper"):
            raise ValueError(f"variant must be 'official' or 'paper', got {variant!r}")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, variant=variant, gamma=None
        )
        super().__init__(params, defaults, stacked=stacked, fused=fused)

    def _update(self, group, params, grads, buffers) -> None:
        beta1, beta2 = group["betas"]
        hyper = self._hyper(group, params[0])
        if group["variant"] == "paper":
            del hyper["step"]
            avagrad_paper(
                params,
                grads,
                buffers["exp_avg"],
                buffers["exp_avg_sq"],
                **hyper,
                beta1=beta1,
                beta2=beta2,
                decoupled=self.decoupled,
                fused=self.fused,
            )
            return
        first = group["step"] == 1
        gamma = group["gamma"]
        group["gamma"] = avagrad(
            params,
            grads,
            buffers["exp_avg"],
            buffers["exp_avg_sq"],
            **hyper,
            first_step=first,
            gamma=1.0 if gamma is None else gamma,
            beta1=beta1,
            beta2=beta2,
            decoupled=self.decoupled,
            normalise=self.normalise,
            fused=self.fused,
        )


class AvaGradW(AvaGrad):
    """AvaGrad with decoupled weight decay: p ← p·(1 − lr·λ) before each update (from t = 2)."""

    decoupled = True
