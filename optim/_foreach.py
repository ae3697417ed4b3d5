"""Helpers for update rules written over lists of stacked tensors.

A stacked tensor has a leading config dimension C. A hyperparameter is a Python float
(shared by every config), a 0-dim tensor, or a tensor of shape [C] (one value per config).
"""

from __future__ import annotations

import torch
from torch import Tensor

HParam = float | Tensor
Step = int | Tensor


def per_config(value: HParam, like: list[Tensor]) -> HParam | list[Tensor]:
    """Shape a hyperparameter so that a foreach op broadcasts it over each stacked tensor."""
    if not isinstance(value, Tensor) or value.dim() == 0:
        return value
    return [value.view(-1, *([1] * (t.dim() - 1))) for t in like]


def mul_(tensors: list[Tensor], value: HParam) -> None:
    """tensors[i] *= value, with per-config broadcasting."""
    torch._foreach_mul_(tensors, per_config(value, tensors))


def add_(tensors: list[Tensor], value: HParam) -> None:
    """tensors[i] += value, with per-config broadcasting."""
    torch._foreach_add_(tensors, per_config(value, tensors))


def is_zero(value: HParam) -> bool:
    """True only for a Python number equal to zero (tensors are never skipped, so graphs stay static)."""
    return not isinstance(value, Tensor) and value == 0


def config_sum(tensors: list[Tensor]) -> Tensor:
    """Sum of every non-leading element of every tensor: one value per config, shape [C]."""
    return torch.stack([t.flatten(1).sum(1) for t in tensors]).sum(0)


def elements_per_config(tensors: list[Tensor]) -> int:
    """Number of elements one config owns across the tensors (the normalisation scope d)."""
    return sum(t[0].numel() for t in tensors)
