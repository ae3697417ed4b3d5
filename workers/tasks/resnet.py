"""`mnist1d-resnet`: the WRN's ingredients in miniature, a 1-D pre-activation ResNet with BatchNorm.

A stem conv(1→k, kernel 5, stride 2) takes the 40 inputs to 20 positions; stage 1 has
`blocks` pre-activation blocks (BN-ReLU-conv3, BN-ReLU-conv3, + identity) of k channels;
stage 2 has `blocks` blocks of 2k channels, the first with stride 2 (20 → 10 positions)
and a 1×1 projection shortcut from its pre-activated input, as `workers.tasks.wrn.Block`;
then BN-ReLU, global average pooling and a linear classifier 2k → 10.

Batched like `mnist1d-mlp`: the C configurations' parameters live in one flat buffer
[C, P] (torch's layouts inside), activations are [C, channels, length·N], every
convolution is one batched matrix product over im2col columns, and the backward pass is
written out by hand. Each configuration's BatchNorm has its own batch and running
statistics. On a CPU the BN-ReLUs run as fused C loops (`resnet_native`) that write the
columns directly: a 32-config step takes about 2.4× less time than autograd over grouped
convolutions, 1.8× less than the same code with torch's BatchNorm ops (`resnet_ops`, the
path on a GPU or without a C compiler).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from optim.diagnostics import Segment
from workers.tasks import resnet_native, resnet_ops
from workers.tasks.base import BatchedModel
from workers.tasks.mlp import chunked_errors
from workers.tasks.mnist1d_data import Splits, mnist1d_on
from workers.tasks.mnist1d_task import Mnist1DTask
from workers.tasks.resnet_arch import (
    STEM_KERNEL,
    STEM_PADDING,
    STEM_STRIDE,
    Architecture,
    resnet_init,
)
from workers.tasks.resnet_ops import stem_columns
from workers.tasks.resnet_pass import ResNetPass

#: The most configurations per pass on a CPU (fewer: activations stay in cache; more: fewer
#: calls); on a GPU one pass takes them all.
CPU_PASS = 16
#: Examples per evaluation chunk, and the most activation columns (configs × examples) in one.
EVAL_CHUNK = 1000
EVAL_ELEMENTS = 1 << 17


def param_views(flat: Tensor, arch: Architecture) -> dict[str, Tensor]:
    """Name → view into a flat buffer [C, P]: [C, n] for vectors, [C, out, in·kernel] for
    convolutions (the matrix of their im2col product), [C, out, in] for the classifier."""
    views, offset = {}, 0
    for name, shape in arch.shapes.items():
        size = torch.Size(shape).numel()
        view = flat[:, offset : offset + size]
        views[name] = view.view(flat.shape[0], shape[0], -1) if len(shape) > 1 else view
        offset += size
    return views


class ResNetModel(BatchedModel):
    """C stacked 1-D ResNets with a hand-written forward and backward pass."""

    def __init__(
        self,
        data: Splits,
        arch: Architecture,
        init: dict[str, Tensor],
        configs: int,
        device: torch.device,
        dtype: torch.dtype,
        fused: bool | None = None,
    ):
        super().__init__(configs)
        self.data, self.arch = data, arch
        if fused is None:
            fused = resnet_native.available(device, dtype)
        #: The BN-ReLU implementation: fused C loops (a CPU where they built) or torch ops.
        self.ops = resnet_native if fused else resnet_ops
        flat = torch.cat([init[name].flatten() for name in arch.shapes])
        self.flat = flat.to(device=device, dtype=dtype).repeat(configs, 1)
        self.flat.grad = torch.zeros_like(self.flat)
        self.weights = param_views(self.flat, arch)
        self.grads = param_views(self.flat.grad, arch)
        like = dict(device=device, dtype=dtype)
        self.stats = {
            name: (torch.zeros(configs, channels, **like), torch.ones(configs, channels, **like))
            for name, channels in arch.batch_norms.items()
        }
        passes = -(-configs // CPU_PASS) if device.type == "cpu" else 1
        bounds = torch.linspace(0, configs, passes + 1).round().long().tolist()
        self.passes = [
            ResNetPass(arch, self.weights, self.grads, self.stats, slice(a, b), self.ops)
            for a, b in itertools.pairwise(bounds)
        ]

    @property
    def parameters(self) -> list[Tensor]:
        """The stacked tensors the optimizer steps."""
        return [self.flat]

    def segments(self) -> list[Segment]:
        """Each named parameter tensor as a run of the flat buffer (for the diagnostics)."""
        segments, offset = [], 0
        for name, shape in self.arch.shapes.items():
            size = torch.Size(shape).numel()
            segments.append(Segment(name, 0, offset, offset + size))
            offset += size
        return segments

    @torch.no_grad()
    def train_step(self, keys: Tensor, weight: Tensor) -> Tensor:
        """Per-config loss on one minibatch (batch statistics); gradients left in `.grad`."""
        x, labels = self.data.x_train[keys], self.data.y_train[keys]
        columns = stem_columns(x, STEM_KERNEL, STEM_STRIDE, STEM_PADDING)
        return torch.cat([part.train_step(columns, labels, weight) for part in self.passes])

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        """Logits [C, 10, N] of every configuration for inputs x [N, 40] (running statistics)."""
        columns = stem_columns(x, STEM_KERNEL, STEM_STRIDE, STEM_PADDING)
        return torch.cat([part.logits(columns, x.shape[0])[0] for part in self.passes])

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Per-config (objective, test metric), BatchNorm in eval mode (running statistics)."""
        widest = max(part.configs for part in self.passes)
        chunk = max(1, min(EVAL_CHUNK, EVAL_ELEMENTS // widest))
        data = self.data
        return (
            chunked_errors(self.logits, data.x_val, data.y_val, chunk),
            chunked_errors(self.logits, data.x_test, data.y_test, chunk),
        )

    def running_stats(self, name: str) -> tuple[Tensor, Tensor]:
        """Running (mean, var) [C, channels] of BatchNorm `name` (e.g. "stage1.0.bn1")."""
        return self.stats[name]


class MnistResNet(Mnist1DTask):
    """MNIST-1D, 1-D pre-activation ResNet with BatchNorm; objective: validation error %."""

    name = "mnist1d-resnet"
    description = (
        "MNIST-1D, 1-D pre-activation ResNet (BatchNorm): stem conv + 2 stages of residual "
        "blocks (k, 2k channels) + linear; validation error %"
    )

    def __init__(self, channels: int = 8, blocks: int = 1) -> None:
        self.arch = Architecture(channels, blocks)

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load the data and build the fused C loops (where they apply) before jobs start."""
        super().prepare(device, dtype)
        resnet_native.available(device, dtype)

    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> ResNetModel:
        """C copies of the model initialised from `seed`."""
        init = resnet_init(seed, self.arch)
        return ResNetModel(mnist1d_on(device, dtype), self.arch, init, configs, device, dtype)

    def step_flops(self, batch_size: int) -> float:
        """Nominal conv/matmul FLOPs of one training step of one configuration."""
        return self.arch.step_flops(batch_size)
