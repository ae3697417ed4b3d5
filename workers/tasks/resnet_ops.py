"""BatchNorm-ReLU of `mnist1d-resnet` with what surrounds it, in portable torch ops.

Activations are [C, channels, length·N] with the batch N innermost, so a shift by one
position is a shift by N elements. A BN-ReLU either feeds a kernel-3, padding-1
convolution, and then writes that convolution's im2col columns [C, 3·channels,
out_length·N] (rows ordered (channel, tap): torch's Conv1d weight [out, in, 3] flattened is
the matrix that multiplies them), or feeds the global average pool. Its backward takes the
gradient of those columns (or of the pooled features), so a convolution's input gradient
is one matrix product and the col2im happens here. Every BatchNorm is C separate
BatchNorm1d's (momentum 0.1, eps 1e-5): statistics are per row of [C·channels, M].
`workers.tasks.resnet_native` does the same in fused C loops on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MOMENTUM = 0.1
EPS = 1e-5
#: The `stride` that means "feeds the global average pool" rather than a convolution.
POOL = 0


@dataclass
class Norm:
    """One BatchNorm's parameters (views [C, ch]) and running statistics ([C, ch] buffers)."""

    weight: Tensor
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor
    weight_grad: Tensor
    bias_grad: Tensor


def taps(columns: Tensor, length: int) -> Tensor:
    """im2col columns [C, 3·in, length·N] viewed as [C, in, 3 taps, length, N]."""
    configs, rows, elements = columns.shape
    return columns.view(configs, rows // 3, 3, length, elements // length)


def centre_tap(columns: Tensor) -> Tensor:
    """The middle-tap rows [C, in, M] of im2col columns [C, 3·in, M]: a 1×1 convolution's input."""
    configs, rows, elements = columns.shape
    return columns.view(configs, rows // 3, 3, elements)[:, :, 1]


def out_length(length: int, stride: int) -> int:
    """Positions after a kernel-3, padding-1 convolution of this stride."""
    return (length - 1) // stride + 1


def stem_columns(x: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
    """Columns [kernel, out_length·N] of the 1-channel stem convolution of x [N, length]."""
    n, length = x.shape
    padded = F.pad(x.t(), (0, 0, padding, padding))
    positions = (length + 2 * padding - kernel) // stride + 1
    windows = padded.as_strided((kernel, positions, n), (n, stride * n, 1))
    return windows.reshape(kernel, positions * n)


def columns_of(a: Tensor, length: int, stride: int) -> Tensor:
    """im2col columns of activations a [C, in, length·N] for a kernel-3, padding-1 convolution."""
    configs, channels, elements = a.shape
    n, short = elements // length, out_length(length, stride)
    padded = F.pad(a.view(configs, channels, length, n), (0, 0, 1, 1))
    row = padded.shape[2] * n
    windows = padded.as_strided(
        (configs, channels, 3, short, n), (channels * row, row, n, stride * n, 1)
    )
    return windows.reshape(configs, 3 * channels, short * n)


def fold_columns(grad: Tensor, length: int, stride: int, centre: Tensor | None) -> Tensor:
    """col2im: a column gradient [C, 3·in, out_length·N] summed onto [C, in, length·N].

    `centre` [C, in, out_length·N] is added to the middle tap (a 1×1 shortcut's gradient).
    """
    configs, rows, elements = grad.shape
    short = out_length(length, stride)
    n = elements // short
    t = taps(grad, short)
    padded = grad.new_zeros(configs, rows // 3, stride * short + 2, n)
    span = stride * (short - 1) + 1
    for k in range(3):
        padded[:, :, k : k + span : stride] += t[:, :, k]
    if centre is not None:
        padded[:, :, 1 : 1 + span : stride] += centre.view(configs, -1, short, n)
    return padded[:, :, 1 : length + 1].reshape(configs, rows // 3, length * n)


def _bn_relu(x: Tensor, norm: Norm, train: bool) -> tuple[Tensor, Tensor, Tensor]:
    """ReLU(BatchNorm(x)), x [C, ch, M]; returns it and the (mean, invstd) it used, [C·ch]."""
    configs, channels, elements = x.shape
    if train:
        mean = x.mean(2, keepdim=True)
        centred = x - mean
        var = torch.linalg.vector_norm(centred, dim=2, keepdim=True).square_().div_(elements)
        invstd = (var + EPS).rsqrt_()
        unbiased = elements / max(elements - 1, 1)
        norm.running_mean.mul_(1 - MOMENTUM).add_(mean.view(configs, channels), alpha=MOMENTUM)
        norm.running_var.mul_(1 - MOMENTUM).add_(
            var.view(configs, channels), alpha=MOMENTUM * unbiased
        )
    else:
        mean = norm.running_mean.unsqueeze(2)
        centred = x - mean
        invstd = (norm.running_var.unsqueeze(2) + EPS).rsqrt()
    scale = invstd * norm.weight.unsqueeze(2)
    out = centred.mul_(scale).add_(norm.bias.unsqueeze(2)).relu_()
    return out, mean.flatten(), invstd.flatten()


def norm_forward(
    x: Tensor, norm: Norm, train: bool, length: int, stride: int
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """BN-ReLU of x [C, ch, length·N] as the next convolution's columns (stride 1 or 2) or
    pooled [C, ch, N] (stride `POOL`); and what `norm_backward` needs."""
    out, mean, invstd = _bn_relu(x, norm, train)
    configs, channels, elements = x.shape
    if stride == POOL:
        result = out.view(configs, channels, length, elements // length).mean(2)
    else:
        result = columns_of(out, length, stride)
    return result, (x, out, mean, invstd)


def norm_backward(
    grad: Tensor,
    saved: tuple[Tensor, ...],
    norm: Norm,
    length: int,
    stride: int,
    centre: Tensor | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """Input gradient [C, ch, M] of `norm_forward` from its result's gradient, plus `residual`;
    the weight and bias gradients go to `norm`'s gradient views."""
    x, out, mean, invstd = saved
    configs, channels, elements = x.shape
    if stride == POOL:
        positions = grad.div(length).unsqueeze(2).expand(-1, -1, length, -1)
        da = positions.reshape(configs, channels, elements)
    else:
        da = fold_columns(grad, length, stride, centre)
    masked = torch.ops.aten.threshold_backward(da, out, 0.0)
    shape = (1, configs * channels, elements)
    dx, dweight, dbias = torch.ops.aten.native_batch_norm_backward(
        masked.view(shape),
        x.view(shape),
        norm.weight.reshape(-1),
        None,
        None,
        mean,
        invstd,
        True,
        EPS,
        [True, True, True],
    )
    norm.weight_grad.copy_(dweight.view(configs, channels))
    norm.bias_grad.copy_(dbias.view(configs, channels))
    dx = dx.view_as(x)
    return dx if residual is None else dx.add_(residual)
