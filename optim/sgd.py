"""SGD with momentum over stacked tensors, reproducing torch.optim.SGD per config."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from optim import _foreach as F
from optim.base import RuleOptimizer
from optim.capturable import fusable


def sgd(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    *,
    first_step: bool,
    lr: F.HParam,
    weight_decay: F.HParam,
    momentum: float,
    dampening: float = 0.0,
    nesterov: bool = False,
) -> None:
    """torch.optim.SGD's rule: L2 into the gradient, buffer = gradient on the first step."""
    if not F.is_zero(weight_decay):
        grads = F.add(grads, F.mul(params, weight_decay))
    if momentum != 0:
        if first_step:
            F.copy_(momentum_buffers, grads)
        else:
            F.mul_(momentum_buffers, momentum)
            F.add_(momentum_buffers, grads, alpha=1 - dampening)
        grads = F.add(grads, momentum_buffers, alpha=momentum) if nesterov else momentum_buffers
    update = F.mul(grads, lr)
    F.sub_(params, update)


class StackedSGD(RuleOptimizer):
    """SGD with momentum whose parameters may carry a leading config dimension."""

    capturable_rule = True

    state_keys = ("momentum_buffer",)

    def __init__(
        self,
        params: Any,
        lr: F.HParam = 0.1,
        momentum: float = 0.9,
        dampening: float = 0.0,
        weight_decay: F.HParam = 0.0,
        nesterov: bool = False,
        *,
        stacked: bool = False,
        fused: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults, stacked=stacked, fused=fused, capturable=capturable)

    def _update(self, group, params, grads, buffers) -> None:
        first = group["step"] == 1
        hyper = self._hyper(group, params[0])
        fusable(sgd, self.fused)(
            params,
            grads,
            buffers["momentum_buffer"],
            first_step=first,
            lr=hyper["lr"],
            weight_decay=hyper["weight_decay"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
        )
