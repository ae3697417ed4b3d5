"""What the one-pass CPU loops (``avagrad_cpu.c``, ``adam_cpu.c``) share on the Python side.

Each loop walks work items: a contiguous run of elements of one stacked tensor that belongs
to one config, at most `ITEM_ELEMENTS` long so that OpenMP threads get balanced shares.
Tensors reach C as tables of data pointers, hyperparameters as one float64 per config.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from functools import cache

import torch
from torch import Tensor

from optim import native
from optim._foreach import HParam, is_zero, per_config_values

ITEM_ELEMENTS = 1 << 15  # 128 KiB of float32 per item: small enough to balance threads


#: The fields every loop's Hyper struct starts with: per-config arrays, then the betas.
HYPER_FIELDS = [
    ("step_size", ctypes.c_void_p),
    ("eps", ctypes.c_void_p),
    ("l2", ctypes.c_void_p),
    ("decay", ctypes.c_void_p),
    ("beta1", ctypes.c_double),
    ("beta2", ctypes.c_double),
]


class Item(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("tensor", "config", "begin", "end")]


def supports(source: str, *lists: list[Tensor]) -> bool:
    """True when every tensor is a contiguous CPU float32/float64 tensor of one dtype and
    the loop in `source` built."""
    dtype = lists[0][0].dtype
    if dtype not in (torch.float32, torch.float64):
        return False
    for tensors in lists:
        for t in tensors:
            if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous():
                return False
    return native.load(source) is not None


@cache
def plan(shapes: tuple[tuple[int, ...], ...]) -> tuple[ctypes.Array, Tensor]:
    """Work items for these stacked shapes, and each item's config."""
    items: list[Item] = []
    for index, shape in enumerate(shapes):
        per_config = math.prod(shape[1:])
        for config in range(shape[0]):
            start, stop = config * per_config, (config + 1) * per_config
            for begin in range(start, stop, ITEM_ELEMENTS):
                items.append(Item(index, config, begin, min(begin + ITEM_ELEMENTS, stop)))
    configs_of = torch.tensor([item.config for item in items], dtype=torch.long)
    return (Item * len(items))(*items), configs_of


def per_config(value: float | Tensor, configs: int) -> Tensor:
    """One float64 per config, for a loop to index."""
    return torch.tensor(per_config_values(value, configs), dtype=torch.float64)


def pointers(tensors: list[Tensor]) -> ctypes.Array:
    """A C array of the tensors' data pointers."""
    return (ctypes.c_void_p * len(tensors))(*[t.data_ptr() for t in tensors])


def launch(
    source: str,
    kernel: str,
    lists: Sequence[list[Tensor]],
    hyper_type: type[ctypes.Structure],
    *,
    step_size: HParam,
    eps: HParam,
    l2: HParam,
    decay: HParam | None,
    beta1: float,
    beta2: float,
    rest: tuple[float | int, ...] = (),
    sums: bool = False,
) -> Tensor | None:
    """Run `kernel`'s float32 or float64 loop from `source` over the items of `lists`
    (parameters first). Its Hyper struct gets the per-config arrays (NULL for no L2 or no
    decay), the betas, then `rest`. With `sums` the loop also writes one float64 per item
    (its last argument), returned added up per config."""
    library = native.load(source)
    assert library is not None, "call supports() first"
    params = lists[0]
    configs = params[0].shape[0]
    table, configs_of = plan(tuple(tuple(p.shape) for p in params))
    partial = torch.zeros(len(table), dtype=torch.float64) if sums else None
    arrays = [
        per_config(step_size, configs),
        per_config(eps, configs),
        None if is_zero(l2) else per_config(l2, configs),
        None if decay is None else per_config(decay, configs),
    ]
    hyper = hyper_type(*[None if a is None else a.data_ptr() for a in arrays], beta1, beta2, *rest)
    suffix = "f32" if params[0].dtype == torch.float32 else "f64"
    getattr(library, f"{kernel}_{suffix}")(
        table,
        ctypes.c_int64(len(table)),
        ctypes.c_int(torch.get_num_threads()),
        *[pointers(ts) for ts in lists],
        ctypes.byref(hyper),
        *([] if partial is None else [ctypes.c_void_p(partial.data_ptr())]),
    )
    if partial is None:
        return None
    return torch.zeros(configs, dtype=torch.float64).index_add_(0, configs_of, partial)
