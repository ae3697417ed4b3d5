"""Official AvaGrad's fast path on CPU: the one-pass C loop of ``avagrad_cpu.c``.

torch.compile cannot fuse AvaGrad's normaliser into the update loop (it re-reads v in a
second loop per tensor), so on CPU the fused step calls a hand-written loop that reads and
writes each element once, like torch's fused Adam. It takes the same arguments as
`optim.avagrad._avagrad_elementwise` and computes the same values (tests compare them).
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from optim import cpu_items, native
from optim._foreach import is_zero

SOURCE = "avagrad_cpu.c"  # built by optim.native


class _Hyper(ctypes.Structure):
    _fields_ = [
        ("step_size", ctypes.c_void_p),
        ("eps", ctypes.c_void_p),
        ("l2", ctypes.c_void_p),
        ("decay", ctypes.c_void_p),
        ("beta1", ctypes.c_double),
        ("beta2", ctypes.c_double),
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
    library = native.load(SOURCE)
    assert library is not None, "call supports() first"
    configs = params[0].shape[0]
    table, configs_of = cpu_items.items_for(params)
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
        float(delayed_correction),
        float(correction),
        int(moving),
        int(normalise),
    )
    partial = torch.zeros(len(configs_of), dtype=torch.float64)
    kernel = library.avagrad_f32 if params[0].dtype == torch.float32 else library.avagrad_f64
    kernel(
        table,
        ctypes.c_int64(len(table)),
        ctypes.c_int(torch.get_num_threads()),
        *[cpu_items.pointers(ts) for ts in (params, grads, exp_avgs, exp_avg_sqs)],
        ctypes.byref(hyper),
        ctypes.c_void_p(partial.data_ptr()),
    )
    if not normalise:
        return None
    sums = torch.zeros(configs, dtype=torch.float64).index_add_(0, configs_of, partial)
    return sums.to(params[0].dtype)
