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
from optim.capturable import is_capturing, update_for

HYPERPARAMETERS = ("lr", "eps", "weight_decay")


class RuleOptimizer(Optimizer):
    """Base class: subclasses name their state buffers and implement `_update`.

    ``fused=True`` runs the rule through ``torch.compile``, except on CPU where a one-pass
    kernel exists (official AvaGrad: the C loop of `optim.avagrad_cpu`; Adam and AdamW: that
    of `optim.adam_cpu`; AMSGrad: torch's fused kernel). Every value that changes from step
    to step (step count, scheduled learning rate) is passed as a tensor, so the step
    compiles once and is reused.

    ``capturable=True`` (`optim.capturable`) makes the step graph-safe: the step count and
    hyperparameters live in static device tensors updated in place, with no host syncs.
    """

    state_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        params: Any,
        defaults: dict[str, Any],
        *,
        stacked: bool = False,
        fused: bool = False,
        capturable: bool = False,
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
        self.capturable = capturable

    def _scalar(self, value: Any, like: Tensor) -> Any:
        """On the fused path, turn a per-step scalar into a tensor so the graph is reused."""
        if not self.fused or isinstance(value, Tensor):
            return value.to(like.device) if isinstance(value, Tensor) else value
        return torch.tensor(value, dtype=like.dtype, device=like.device)

    def _hyper(self, group: dict[str, Any], like: Tensor) -> dict[str, Any]:
        """The group's step count and hyperparameters, ready to pass to the rule."""
        if self.capturable:
            return self._static_hyper(group)
        out = {"step": self._scalar(group["step"], like)}
        for name in HYPERPARAMETERS:
            if name in group:
                value = group[name]
                out[name] = value if is_zero(value) else self._scalar(value, like)
        return out

    def _static_hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        """The group's static device step and hyperparameters (Python zeros stay zeros)."""
        statics = group["static"]
        out: dict[str, Any] = {"step": statics["step"]}
        for name in HYPERPARAMETERS:
            if name in group:
                out[name] = statics.get(name, group[name])
        return out

    def sync_hyperparameters(self) -> None:
        """Copy each group's step-to-step values into its static device tensors, in place.

        Runs eagerly before every step (and before every graph replay): a schedule may
        rebind ``group["lr"]``; the graph keeps reading the same static tensors, kept in
        ``group["static"]`` (created here, so before any capture).
        """
        for group in self.param_groups:
            like = next((p for p in group["params"] if p.grad is not None), None)
            if like is None:
                continue
            statics = group.get("static")
            if statics is None:
                step = torch.tensor(float(group["step"]), dtype=torch.float64)
                statics = group["static"] = {"step": step.to(like.device)}
            for name in HYPERPARAMETERS:
                value = group.get(name)
                static = statics.get(name)
                if value is None or value is static or (static is None and is_zero(value)):
                    continue
                if static is None:
                    static = _static_like(value, like.device)
                    statics[name] = static
                if isinstance(value, Tensor):
                    static.copy_(value)
                else:
                    static.fill_(value)
                group[name] = static

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
        if self.capturable and not is_capturing():
            self.sync_hyperparameters()
        update = self._update
        if self.capturable:
            update = update_for(self) or update
        for group in self.param_groups:
            params, grads, buffers = self._gather(group)
            if not params:
                continue
            if self.capturable:
                if "static" not in group:
                    raise RuntimeError("a capturable optimizer needs one eager step before capture")
                group["static"]["step"].add_(1)
            group["step"] += 1
            update(group, params, grads, buffers)
        return loss

    def _update(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        buffers: dict[str, list[Tensor]],
    ) -> None:
        raise NotImplementedError


def _static_like(value: Any, device: torch.device) -> Tensor:
    """A static device tensor for a hyperparameter: its own tensor's shape and dtype, or a
    float64 0-dim tensor for a Python number (so its math stays Python's double math)."""
    if isinstance(value, Tensor):
        return torch.empty(value.shape, dtype=value.dtype, device=device)
    return torch.zeros((), dtype=torch.float64, device=device)
