"""Stacked Adam/AdamW's fast path on CPU: the one-pass C loop of ``adam_cpu.c``.

torch's fused Adam takes one lr and ε per call, so C stacked configs cost C calls (and
their Python) per step; this loop steps every config in one call with per-config lr, ε and
weight decay. It takes the arguments of `optim.adam._adam_elementwise` without AMSGrad's
buffer and computes the same values (tests compare them).
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from optim import cpu_items, native
from optim._foreach import is_zero

SOURCE = "adam_cpu.c"  # built by optim.native


class _Hyper(ctypes.Structure):
    _fields_ = [
        ("step_size", ctypes.c_void_p),
        ("eps", ctypes.c_void_p),
        ("l2", ctypes.c_void_p),
        ("decay", ctypes.c_void_p),
        ("beta1", ctypes.c_double),
        ("beta2", ctypes.c_double),
        ("bias_correction2_sqrt", ctypes.c_double),
    ]


def supports(*lists: list[Tensor]) -> bool:
    """True when the C loop built and can take these tensors (`cpu_items.supports`)."""
    return cpu_items.supports(SOURCE, *lists)


def adam_step(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    step_size: float | Tensor,
    bias_correction2_sqrt: float | Tensor,
    eps: float | Tensor,
    l2: float | Tensor,
    decay: float | Tensor | None,
    beta1: float,
    beta2: float,
) -> None:
    """One Adam (``l2``) or AdamW (``decay`` = 1 − lr·λ) step in place."""
    library = native.load(SOURCE)
    assert library is not None, "call supports() first"
    configs = params[0].shape[0]
    table, _ = cpu_items.items_for(params)
    keep = {
        "step_size": cpu_items.per_config(step_size, configs),
        "eps": cpu_items.per_config(eps, configs),
        "l2": None if is_zero(l2) else cpu_items.per_config(l2, configs),
        "decay": None if decay is None else cpu_items.per_config(decay, configs),
    }
    hyper = _Hyper(
        *[cpu_items.address(t) for t in keep.values()],
        beta1,
        beta2,
        float(bias_correction2_sqrt),
    )
    kernel = library.adam_f32 if params[0].dtype == torch.float32 else library.adam_f64
    kernel(
        table,
        ctypes.c_int64(len(table)),
        ctypes.c_int(torch.get_num_threads()),
        *[cpu_items.pointers(ts) for ts in (params, grads, exp_avgs, exp_avg_sqs)],
        ctypes.byref(hyper),
    )
