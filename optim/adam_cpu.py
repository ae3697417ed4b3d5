"""Stacked Adam/AdamW's fast path on CPU: the one-pass C loop of ``adam_cpu.c``.

torch's fused Adam takes one lr and ε per call, so C stacked configs cost C calls (and
their Python) per step; this loop steps every config in one call with per-config lr, ε and
weight decay. It takes the arguments of `optim.adam._adam_elementwise` without AMSGrad's
buffer and computes the same values (tests compare them).
"""

from __future__ import annotations

import ctypes

from torch import Tensor

from optim import cpu_items

SOURCE = "adam_cpu.c"  # built by optim.native


class _Hyper(ctypes.Structure):
    _fields_ = [*cpu_items.HYPER_FIELDS, ("bias_correction2_sqrt", ctypes.c_double)]


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
    cpu_items.launch(
        SOURCE,
        "adam",
        (params, grads, exp_avgs, exp_avg_sqs),
        _Hyper,
        step_size=step_size,
        eps=eps,
        l2=l2,
        decay=decay,
        beta1=beta1,
        beta2=beta2,
        rest=(float(bias_correction2_sqrt),),
    )
