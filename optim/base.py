"""`RuleOptimizer`: a torch.optim.Optimizer whose step is one stacked update rule.

Like torch.optim, each optimizer is a class (param groups, state, schedulers) plus a
functional rule. Here the rule always sees stacked tensors with a leading config
dimension C: a plain optimizer passes C = 1 views of its parameters, a batched trainer
passes parameters that really are stacked (``stacked=True``), with per-config
hyperparameters as tensors of shape [C].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer

from optim._foreach import is_zero

HYPERPARAMETERS = ("lr", "eps", "weight_decay")


class RuleOptimizer(Optimizer):
    """Base class: subclasses name their state buffers and implement `_update`.

    ``fused=True`` runs the rule through ``torch.compile``, except on CPU where a one-pass
    kernel exists (official AvaGrad: the C loop of `optim.avagrad_cpu`; Adam and AdamW: that
    of `optim.adam_cpu`; AMSGrad: torch's fused kernel). Every value that changes from step
    to step (step count, scheduled learning rate) is passed as a tensor, so the step
    compiles once and is reused.
    """

    state_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        params: Any,
        defaults: dict[str, Any],
        *,
        stacked: bool = False,
        fused: bool = False,
    ) -> None:
        for name in HYPERPARAMETERS:
            value = defaults.get(name)
            if value is None:
                continue
            bad = (value < 0).any().item() if isinstance(value, Tensor) else value < 0
            if bad:
                raise ValueError(f"{name} must be >= 0, got {value}")
        defaults = {**defaults, "step": 0}
        super().__init__(params, defaults)
        self.stacked = stacked
        self.fused = fused

    def _scalar(self, value: Any, like: Tensor) -> Any:
        """On the fused path, turn a per-step scalar into a tensor so the graph is reused."""
        if not self.fused or isinstance(value, Tensor):
            return value.to(like.device) if isinstance(value, Tensor) else value
        return torch.tensor(value, dtype=like.dtype, device=like.device)

    def _hyper(self, group: dict[str, Any], like: Tensor) -> dict[str, Any]:
        """The group's step count and hyperparameters, ready to pass to the rule."""
        out = {"step": self._scalar(group["step"], like)}
        for name in HYPERPARAMETERS:
            if name in group:
                value = group[name]
                out[name] = value if is_zero(value) else self._scalar(value, like)
        return out

    def _gather(
        self, group: dict[str, Any]
    ) -> tuple[list[Tensor], list[Tensor], dict[str, list[Tensor]]]:
        """Stacked views of the group's parameters with gradients, their gradients and state."""
        params, grads = [], []
        buffers: dict[str, list[Tensor]] = {key: [] for key in self.state_keys}
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self.state[p]
            if not state:
                for key in self.state_keys:
                    state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            view = (lambda t: t) if self.stacked else (lambda t: t.unsqueeze(0))
            params.append(view(p))
            grads.append(view(p.grad))
            for key in self.state_keys:
                buffers[key].append(view(state[key]))
        return params, grads, buffers

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One optimization step for every param group; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, buffers = self._gather(group)
            if not params:
                continue
            group["step"] += 1
            self._update(group, params, grads, buffers)
        return loss

    def _update(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        buffers: dict[str, list[Tensor]],
    ) -> None:
        raise NotImplementedError
