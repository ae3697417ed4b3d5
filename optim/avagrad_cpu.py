"""Official AvaGrad's fast path on CPU: the one-pass C loop of ``avagrad_cpu.c``.

torch.compile cannot fuse AvaGrad's normaliser into the update loop (it re-reads v in a
second loop per tensor), so on CPU the fused step calls a hand-written loop that reads and
writes each element once, like torch's fused Adam. It takes the same arguments as
`optim.avagrad._avagrad_elementwise` and computes the same values (tests compare them).
"""

from __future__ import annotations

import ctypes

from torch import Tensor

from optim import cpu_items

SOURCE = "avagrad_cpu.c"  # built by optim.native


class _Hyper(ctypes.Structure):
    _fields_ = [
        *cpu_items.HYPER_FIELDS,
        ("delayed_correction", ctypes.c_double),
        ("correction", ctypes.c_double),
        ("moving", ctypes.c_int32),
        ("normalise", ctypes.c_int32),
    ]


def supports(*lists: list[Tensor]) -> bool:
    """True when the C loop built and can take these tensors (`cpu_items.supports`)."""
    return cpu_items.supports(SOURCE, *lists)


def avagrad_step(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    moving: bool,
    step_size: float | Tensor,
    delayed_correction: float | Tensor,
    correction: float | Tensor,
    eps: float | Tensor,
    l2: float | Tensor,
    decay: float | Tensor | None,
    beta1: float,
    beta2: float,
    normalise: bool,
) -> Tensor | None:
    """One official AvaGrad step in place; returns Σ q⁻² per config (None if not normalising)."""
    sums = cpu_items.launch(
        SOURCE,
        "avagrad",
        (params, grads, exp_avgs, exp_avg_sqs),
        _Hyper,
        step_size=step_size,
        eps=eps,
        l2=l2,
        decay=decay,
        beta1=beta1,
        beta2=beta2,
        rest=(float(delayed_correction), float(correction), int(moving), int(normalise)),
        sums=True,
    )
    assert sums is not None
    return sums.to(params[0].dtype) if normalise else None
