"""List-of-tensor operations for update rules written over stacked tensors.

A stacked tensor has a leading config dimension C. A hyperparameter is a Python float
(shared by every config), a 0-dim tensor, or a tensor of shape [C] (one value per
config); every op broadcasts it per config. Eagerly the ops are torch's multi-tensor
``_foreach`` kernels; under ``torch.compile`` they are plain per-tensor ops, which
inductor fuses into one loop per tensor (its foreach lowering is less robust).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

HParam = float | Tensor
Step = int | Tensor
Operand = HParam | list[Tensor]


def per_config(value: HParam, like: list[Tensor]) -> HParam | list[Tensor]:
    """Shape a hyperparameter so that it broadcasts over each stacked tensor's config axis."""
    if not isinstance(value, Tensor) or value.dim() == 0:
        return value
    return [value.view(-1, *([1] * (t.dim() - 1))) for t in like]


def per_config_values(value: HParam, configs: int) -> list[float]:
    """A hyperparameter as one Python float per config."""
    return torch.as_tensor(value, dtype=torch.float64).reshape(-1).expand(configs).tolist()


def _operand(value: Operand, like: list[Tensor]) -> Any:
    return value if isinstance(value, list) else per_config(value, like)


def _each(value: Operand, like: list[Tensor]) -> list[Any]:
    shaped = _operand(value, like)
    return shaped if isinstance(shaped, list) else [shaped] * len(like)


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def add(xs: list[Tensor], y: Operand, alpha: float = 1.0) -> list[Tensor]:
    """xs + alpha·y."""
    if _compiling():
        return [x + alpha * v for x, v in zip(xs, _each(y, xs), strict=True)]
    if isinstance(y, list):
        return torch._foreach_add(xs, y, alpha=alpha)
    return torch._foreach_add(xs, _operand(y * alpha if alpha != 1 else y, xs))


def add_(xs: list[Tensor], y: Operand, alpha: float = 1.0) -> None:
    """xs += alpha·y."""
    if _compiling():
        for x, v in zip(xs, _each(y, xs), strict=True):
            x.add_(alpha * v)
    elif isinstance(y, list):
        torch._foreach_add_(xs, y, alpha=alpha)
    else:
        torch._foreach_add_(xs, _operand(y * alpha if alpha != 1 else y, xs))


def sub(xs: list[Tensor], ys: list[Tensor]) -> list[Tensor]:
    """xs − ys."""
    if _compiling():
        return [x - y for x, y in zip(xs, ys, strict=True)]
    return torch._foreach_sub(xs, ys)


def sub_(xs: list[Tensor], ys: list[Tensor]) -> None:
    """xs −= ys."""
    if _compiling():
        for x, y in zip(xs, ys, strict=True):
            x.sub_(y)
    else:
        torch._foreach_sub_(xs, ys)


def mul(xs: list[Tensor], y: Operand) -> list[Tensor]:
    """xs · y."""
    if _compiling():
        return [x * v for x, v in zip(xs, _each(y, xs), strict=True)]
    return torch._foreach_mul(xs, _operand(y, xs))


def mul_(xs: list[Tensor], y: Operand) -> None:
    """xs *= y."""
    if _compiling():
        for x, v in zip(xs, _each(y, xs), strict=True):
            x.mul_(v)
    else:
        torch._foreach_mul_(xs, _operand(y, xs))


def div(xs: list[Tensor], y: Operand) -> list[Tensor]:
    """xs / y."""
    if _compiling():
        return [x / v for x, v in zip(xs, _each(y, xs), strict=True)]
    return torch._foreach_div(xs, _operand(y, xs))


def div_(xs: list[Tensor], y: Operand) -> None:
    """xs /= y."""
    if _compiling():
        for x, v in zip(xs, _each(y, xs), strict=True):
            x.div_(v)
    else:
        torch._foreach_div_(xs, _operand(y, xs))


def lerp_(xs: list[Tensor], ys: list[Tensor], weight: float) -> None:
    """xs += weight·(ys − xs): an exponential moving average."""
    if _compiling():
        for x, y in zip(xs, ys, strict=True):
            x.lerp_(y, weight)
    else:
        torch._foreach_lerp_(xs, ys, weight)


def addcmul_(xs: list[Tensor], a: list[Tensor], b: list[Tensor], value: float) -> None:
    """xs += value·a·b."""
    if _compiling():
        for x, u, v in zip(xs, a, b, strict=True):
            x.addcmul_(u, v, value=value)
    else:
        torch._foreach_addcmul_(xs, a, b, value=value)


def sqrt(xs: list[Tensor]) -> list[Tensor]:
    """Element-wise square roots (new tensors)."""
    if _compiling():
        return [x.sqrt() for x in xs]
    return torch._foreach_sqrt(xs)


def reciprocal_(xs: list[Tensor]) -> None:
    """xs = 1 / xs."""
    if _compiling():
        for x in xs:
            x.reciprocal_()
    else:
        torch._foreach_reciprocal_(xs)


def maximum_(xs: list[Tensor], ys: list[Tensor]) -> None:
    """xs = max(xs, ys)."""
    if _compiling():
        for x, y in zip(xs, ys, strict=True):
            torch.maximum(x, y, out=x)
    else:
        torch._foreach_maximum_(xs, ys)


def copy_(xs: list[Tensor], ys: list[Tensor]) -> None:
    """xs = ys (in place)."""
    if _compiling():
        for x, y in zip(xs, ys, strict=True):
            x.copy_(y)
    else:
        torch._foreach_copy_(xs, ys)


def is_zero(value: HParam) -> bool:
    """True only for a Python zero: tensors are never skipped, so compiled graphs stay static."""
    return not isinstance(value, Tensor) and value == 0


def config_sum(tensors: list[Tensor]) -> Tensor:
    """Sum of every non-leading element of every tensor: one float64 value per config, [C].

    Each tensor is reduced over its own non-config dims in float64 and the per-tensor partials
    are added in list order, so no config's sum mixes with another's or follows C's layout.
    """
    total = tensors[0].flatten(1).sum(1, dtype=torch.float64)
    for t in tensors[1:]:
        total = total + t.flatten(1).sum(1, dtype=torch.float64)
    return total


def elements_per_config(tensors: list[Tensor]) -> int:
    """Number of elements one config owns across the tensors (the normalisation scope d)."""
    return sum(t[0].numel() for t in tensors)


_COMPILED: dict[Any, Any] = {}


def fusable(body: Any, fused: bool) -> Any:
    """`body` itself, or (``fused=True``) its ``torch.compile``'d version, built once.

    Rules keep step-dependent scalar math (bias corrections, step sizes) outside the
    body, so the compiled loop only does per-element work.
    """
    if not fused:
        return body
    if body not in _COMPILED:
        _COMPILED[body] = torch.compile(body, dynamic=False)
    return _COMPILED[body]
