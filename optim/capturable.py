"""Graph-safe optimizer steps: per-step scalars as device tensors, no host syncs.

With ``capturable`` set, a `RuleOptimizer` keeps its step count and hyperparameters in
static device tensors updated in place, so its step can be captured in a CUDA graph and
replayed. Python floats become float64 0-dim tensors, so the scalar math is Python's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor

from optim import _foreach as F

_CAPTURING: ContextVar[bool] = ContextVar("optim_capturing", default=False)


@contextlib.contextmanager
def capture_scope() -> Iterator[None]:
    """Mark the code inside as being recorded into a graph (steps then skip host-side syncs)."""
    token = _CAPTURING.set(True)
    try:
        yield
    finally:
        _CAPTURING.reset(token)


def is_capturing() -> bool:
    """Inside `capture_scope`, or on a CUDA stream that is capturing."""
    if _CAPTURING.get():
        return True
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def power(base: Any, exponent: float) -> Any:
    """base ** exponent, computed as Python's pow also for a tensor base (torch turns ``** 0.5``
    and ``** -0.5`` into sqrt and rsqrt, which round differently)."""
    if not isinstance(base, Tensor):
        return base**exponent
    return torch.pow(base, torch.full_like(base, exponent))


def fusable(body: Callable[..., Any], fused: bool) -> Callable[..., Any]:
    """`optim._foreach.fusable`, plus: 0-dim device scalars cast to the lists' dtype (so
    CUDA's multi-tensor kernels take their fast route), and, compiled, each stacked
    argument's config dimension marked dynamic (one compilation serves every C > 1)."""
    compiled = F.fusable(body, fused)

    def call(*args: Any, **kwargs: Any) -> Any:
        dtype = args[0][0].dtype
        args = tuple(_cast(value, dtype) for value in args)
        kwargs = {name: _cast(value, dtype) for name, value in kwargs.items()}
        if fused:
            for value in (*args, *kwargs.values()):
                for t in value if isinstance(value, list) else [value]:
                    if isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] > 1:
                        torch._dynamo.maybe_mark_dynamic(t, 0)
        return compiled(*args, **kwargs)

    return call


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """A 0-dim float tensor in `dtype` (the rounding an op applies to a Python scalar)."""
    if isinstance(value, Tensor) and value.dim() == 0 and value.dtype != dtype:
        return value.to(dtype)
    return value


def make_capturable(optimizer: Any) -> bool:
    """Switch a `RuleOptimizer` whose rule supports it to graph-safe steps; False if it cannot."""
    from optim.base import RuleOptimizer

    if not isinstance(optimizer, RuleOptimizer) or update_for(optimizer) is None:
        return False
    optimizer.capturable = True
    return True


def update_for(optimizer: Any) -> Callable[..., None] | None:
    """The graph-safe `_update(group, params, grads, buffers)` of `optimizer`, or None."""
    from optim.avagrad import AvaGrad

    if isinstance(optimizer, AvaGrad):
        return lambda *args: avagrad_update(optimizer, *args)
    if getattr(optimizer, "capturable_rule", False):
        return optimizer._update
    return None


def avagrad_update(
    optimizer: Any,
    group: dict[str, Any],
    params: list[Tensor],
    grads: list[Tensor],
    buffers: dict[str, list[Tensor]],
) -> None:
    """`AvaGrad._update` with device scalars and γ updated in place (the graph reads one γ).

    Mirrors `optim.avagrad.avagrad`; the host branch on step 1 never runs in a captured step.
    """
    from optim import avagrad as A

    if group["variant"] == "paper":
        optimizer._update(group, params, grads, buffers)
        return
    beta1, beta2 = group["betas"]
    hyper = optimizer._hyper(group, params[0])
    step, lr, eps = hyper["step"], hyper["lr"], hyper["eps"]
    weight_decay = hyper["weight_decay"]
    moving = group["step"] != 1
    gamma = group["gamma"]
    decay = None
    if optimizer.decoupled and moving and not F.is_zero(weight_decay):
        decay = 1 - lr * weight_decay
    inverse_squares = fusable(A._avagrad_elementwise, optimizer.fused)(
        params,
        grads,
        buffers["exp_avg"],
        buffers["exp_avg_sq"],
        moving=moving,
        step_size=(1.0 if gamma is None else gamma) * lr / (1 - beta1**step),
        delayed_correction=power(1 - beta2 ** (step - 1), -0.5) if moving else 0.0,
        correction=power(1 - beta2**step, -0.5),
        eps=eps,
        l2=0.0 if optimizer.decoupled else weight_decay,
        decay=decay,
        beta1=beta1,
        beta2=beta2,
        normalise=optimizer.normalise,
    )
    if inverse_squares is None:
        new = torch.ones(params[0].shape[0], dtype=params[0].dtype, device=params[0].device)
    else:
        new = torch.rsqrt(inverse_squares / F.elements_per_config(params))
    if gamma is None:
        group["gamma"] = new
    else:
        gamma.copy_(new)
