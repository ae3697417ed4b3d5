"""Divergence isolation: freeze configurations whose loss went non-finite.

A diverged configuration's parameters and optimizer state are set to zero and its loss
weight to zero, so it trains no further, stays finite, and can never feed a NaN into a
computation another configuration shares.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: Per-config hyperparameters in a param group: left alone (they are finite by construction).
HYPERPARAMETERS = frozenset({"lr", "eps", "weight_decay"})


@torch.no_grad()
def freeze_configs(params: list[Tensor], optimizer: Any, dead: Tensor) -> None:
    """Zero rows `dead` (config indices) of stacked `params` and of the optimizer's state."""
    if dead.numel() == 0:
        return
    configs = params[0].shape[0]
    for p in params:
        p.index_fill_(0, dead, 0.0)
    inner = getattr(optimizer, "inner", None)
    if inner is not None:  # optim.PerConfigOptimizer: param group c holds config c's views
        for c in dead.tolist():
            for view in inner.param_groups[c]["params"]:
                _zero_state(inner.state.get(view, {}), view.shape)
        return
    for p in params:
        state = optimizer.state.get(p, {})
        for value in state.values():
            if isinstance(value, Tensor) and value.shape == p.shape and value.is_floating_point():
                value.index_fill_(0, dead.to(value.device), 0.0)
    for group in optimizer.param_groups:
        for key, value in group.items():
            per_config = (
                isinstance(value, Tensor) and value.dim() == 1 and value.shape[0] == configs
            )
            if per_config and key not in HYPERPARAMETERS and value.is_floating_point():
                value.index_fill_(0, dead.to(value.device), 0.0)  # e.g. AvaGrad's γ


def _zero_state(state: dict[str, Any], shape: torch.Size) -> None:
    """Zero the buffers of one parameter's state (not its step counter)."""
    for value in state.values():
        if isinstance(value, Tensor) and value.shape == shape and value.is_floating_point():
            value.zero_()
