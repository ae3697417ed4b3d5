"""Delayed Adam (the paper's Algorithm 1): Adam whose preconditioner lags one step."""

from __future__ import annotations

from typing import Any

from optim._foreach import HParam
from optim.avagrad import AvaGrad


class DelayedAdam(AvaGrad):
    """AvaGrad's official rule with γ ≡ 1: m / (√v_{t-1} + ε), no update at t = 1.

    With β1 = 0 it converges on the paper's Eq. (11) problem where Adam does not.
    """

    normalise = False

    def __init__(
        self,
        params: Any,
        lr: HParam = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: HParam = 1e-8,
        weight_decay: HParam = 0.0,
        *,
        stacked: bool = False,
        fused: bool = False,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, "official", stacked=stacked, fused=fused
        )
