"""Official AvaGrad's fast path on CPU: the one-pass C loop of ``avagrad_cpu.c``.

torch.compile cannot fuse AvaGrad's normaliser into the update loop (it re-reads v in a
second loop per tensor), so on CPU the fused step calls a hand-written loop that reads and
writes each element once, like torch's fused Adam. It takes the same arguments as
`optim.avagrad._avagrad_elementwise` and computes the same values (tests compare them).
"""

from __future__ import annotations

import ctypes
import math
from functools import cache

import torch
from torch import Tensor

from optim import native
from optim._foreach import is_zero, per_config_values

SOURCE = "avagrad_cpu.c"  # built by optim.native
ITEM_ELEMENTS = 1 << 15  # 128 KiB of float32 per item: small enough to balance threads


class _Item(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("tensor", "config", "begin", "end")]


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


def _library() -> ctypes.CDLL | None:
    return native.load(SOURCE)


def supports(*lists: list[Tensor]) -> bool:
    """True when every tensor is a contiguous CPU float32/float64 tensor of one dtype."""
    dtype = lists[0][0].dtype
    if dtype not in (torch.float32, torch.float64):
        return False
    for tensors in lists:
        for t in tensors:
            if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous():
                return False
    return _library() is not None


@cache
def _plan(shapes: tuple[tuple[int, ...], ...]) -> tuple[ctypes.Array, Tensor]:
    """Work items for these stacked shapes, and each item's config."""
    items: list[_Item] = []
    for index, shape in enumerate(shapes):
        per_config = math.prod(shape[1:])
        for config in range(shape[0]):
            start, stop = config * per_config, (config + 1) * per_config
            for begin in range(start, stop, ITEM_ELEMENTS):
                items.append(_Item(index, config, begin, min(begin + ITEM_ELEMENTS, stop)))
    configs_of = torch.tensor([item.config for item in items], dtype=torch.long)
    return (_Item * len(items))(*items), configs_of


def _per_config(value: float | Tensor, configs: int) -> Tensor:
    """One float64 per config, for the C loop to index."""
    return torch.tensor(per_config_values(value, configs), dtype=torch.float64)


def _pointers(tensors: list[Tensor]) -> ctypes.Array:
    return (ctypes.c_void_p * len(tensors))(*[t.data_ptr() for t in tensors])


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
    library = _library()
    assert library is not None, "call supports() first"
    configs = params[0].shape[0]
    table, configs_of = _plan(tuple(tuple(p.shape) for p in params))
    keep = {
        "step_size": _per_config(step_size, configs),
        "eps": _per_config(eps, configs),
        "l2": None if is_zero(l2) else _per_config(l2, configs),
        "decay": None if decay is None else _per_config(decay, configs),
    }
    hyper = _Hyper(
        *[None if t is None else t.data_ptr() for t in keep.values()],
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
        *[_pointers(ts) for ts in (params, grads, exp_avgs, exp_avg_sqs)],
        ctypes.byref(hyper),
        ctypes.c_void_p(partial.data_ptr()),
    )
    if not normalise:
        return None
    sums = torch.zeros(configs, dtype=torch.float64).index_add_(0, configs_of, partial)
    return sums.to(params[0].dtype)
