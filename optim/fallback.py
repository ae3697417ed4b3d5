"""Run any torch.optim optimizer over stacked parameters: one param group per config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer


class PerConfigOptimizer:
    """Steps stacked parameters [C, ...] with an unmodified torch optimizer.

    Param group c holds views ``p[c]`` of every stacked tensor, with config c's
    hyperparameters, so each config is optimized exactly as it would be on its own.
    Slower than a stacked rule (C small steps per tensor) but works for any optimizer.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        factory: Callable[[list[dict[str, Any]]], Optimizer],
        per_config: dict[str, Tensor | float],
    ) -> None:
        self.params = list(params)
        configs = self.params[0].shape[0]
        groups = []
        for c in range(configs):
            group: dict[str, Any] = {"params": [p.detach()[c] for p in self.params]}
            for name, value in per_config.items():
                group[name] = (
                    float(value[c]) if isinstance(value, Tensor) and value.dim() else float(value)
                )
            groups.append(group)
        self.inner = factory(groups)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.inner.param_groups

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Point each view's gradient at its slice of the stacked gradient, then step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for c, group in enumerate(self.inner.param_groups):
            for p, view in zip(self.params, group["params"], strict=True):
                view.grad = None if p.grad is None else p.grad[c]
        self.inner.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
