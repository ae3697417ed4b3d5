"""`mnist1d-resnet`'s BatchNorm-ReLU on a CPU as fused C loops (`resnet_cpu.c`).

The same functions as `workers.tasks.resnet_ops` (which they replace where the library
built): the forward writes the next convolution's im2col columns (or the pooled features)
in one pass and keeps no activation; the backward recomputes the ReLU mask, does col2im,
BatchNorm's backward and the identity shortcut's add in one pass per row. Torch's eager
ops need about a dozen passes over memory for the same work.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import torch
from torch import Tensor

from optim import native
from workers.tasks.resnet_ops import EPS, MOMENTUM, POOL, Norm, out_length

SOURCE = str(Path(__file__).with_name("resnet_cpu.c"))
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_P, _I, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
_FORWARD_ARGS = [_P, _I, _I, _I, _I, _P, _P, _I, _P, _P, ctypes.c_int, _D, _D, _P, _P, _P]
_FORWARD_ARGS += [ctypes.c_int, _I]
_BACKWARD_ARGS = [_P, _P, _P, _I, _I, _I, _I, _P, _P, _P, _P, _P, _I, _P, _P, _P, _I]
_BACKWARD_ARGS += [ctypes.c_int, _I]


@cache
def _kernels(dtype: torch.dtype) -> tuple[ctypes._CFuncPtr, ctypes._CFuncPtr] | None:
    library = native.load(SOURCE) if Path(SOURCE).is_file() else None
    if library is None:
        return None
    forward = getattr(library, f"resnet_bn_forward_{_SUFFIX[dtype]}")
    backward = getattr(library, f"resnet_bn_backward_{_SUFFIX[dtype]}")
    forward.argtypes, backward.argtypes = _FORWARD_ARGS, _BACKWARD_ARGS
    return forward, backward


def available(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the C loops built and apply (a CPU tensor of float32 or float64)."""
    return device.type == "cpu" and dtype in _SUFFIX and _kernels(dtype) is not None


def _pointer(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _param_stride(norm: Norm) -> int:
    """Elements between configurations in the parameter views (rows of the flat buffer)."""
    assert norm.weight.stride(1) == 1 and norm.weight_grad.stride(1) == 1
    assert norm.weight.stride(0) == norm.bias.stride(0)
    assert norm.weight_grad.stride(0) == norm.bias_grad.stride(0)
    return norm.weight.stride(0)


def norm_forward(
    x: Tensor, norm: Norm, train: bool, length: int, stride: int
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """`resnet_ops.norm_forward` in one C pass per row."""
    configs, channels, elements = x.shape
    assert x.is_contiguous() and norm.running_mean.is_contiguous()
    n = elements // length
    if stride == POOL:
        out = x.new_empty(configs, channels, n)
    else:
        out = x.new_empty(configs, 3 * channels, out_length(length, stride) * n)
    rows = configs * channels
    mean, invstd = x.new_empty(rows), x.new_empty(rows)
    forward, _ = _kernels(x.dtype)  # type: ignore[misc]
    status = forward(
        x.data_ptr(),
        rows,
        channels,
        length,
        n,
        norm.weight.data_ptr(),
        norm.bias.data_ptr(),
        _param_stride(norm),
        norm.running_mean.data_ptr(),
        norm.running_var.data_ptr(),
        int(train),
        MOMENTUM,
        EPS,
        mean.data_ptr(),
        invstd.data_ptr(),
        out.data_ptr(),
        int(stride == POOL),
        max(stride, 1),
    )
    if status:
        raise MemoryError("resnet_bn_forward: out of memory")
    return out, (x, mean, invstd)


def norm_backward(
    grad: Tensor,
    saved: tuple[Tensor, ...],
    norm: Norm,
    length: int,
    stride: int,
    centre: Tensor | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """`resnet_ops.norm_backward` in one C pass per row."""
    x, mean, invstd = saved
    configs, channels, elements = x.shape
    for t in (grad, centre, residual):
        assert t is None or t.is_contiguous()
    dx = torch.empty_like(x)
    _, backward = _kernels(x.dtype)  # type: ignore[misc]
    status = backward(
        grad.data_ptr(),
        _pointer(centre),
        _pointer(residual),
        configs * channels,
        channels,
        length,
        elements // length,
        x.data_ptr(),
        mean.data_ptr(),
        invstd.data_ptr(),
        norm.weight.data_ptr(),
        norm.bias.data_ptr(),
        _param_stride(norm),
        dx.data_ptr(),
        norm.weight_grad.data_ptr(),
        norm.bias_grad.data_ptr(),
        norm.weight_grad.stride(0),
        int(stride == POOL),
        max(stride, 1),
    )
    if status:
        raise MemoryError("resnet_bn_backward: out of memory")
    return dx
