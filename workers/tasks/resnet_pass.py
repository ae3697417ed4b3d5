"""One forward (and backward) pass of `mnist1d-resnet` over a slice of its configurations.

`ResNetPass` holds views of the slice's parameters, gradients and BatchNorm running
statistics. A training pass records on a tape what its backward needs and writes every
gradient into the views of the flat `.grad` buffer. Convolutions are batched matrix
products over im2col columns that the BN-ReLU before them writes (`resnet_ops`, or its
fused C twin `resnet_native`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from workers.tasks.resnet_arch import Architecture, BlockShape
from workers.tasks.resnet_ops import POOL, Norm, centre_tap


class ResNetPass:
    """Forward (training or eval mode) and backward of the configurations in `span`."""

    def __init__(
        self,
        arch: Architecture,
        weights: dict[str, Tensor],
        grads: dict[str, Tensor],
        stats: dict[str, tuple[Tensor, Tensor]],
        span: slice,
        ops: ModuleType,
    ) -> None:
        self.arch, self.ops, self.span = arch, ops, span
        self.configs = span.stop - span.start
        self.w = {name: view[span] for name, view in weights.items()}
        self.g = {name: view[span] for name, view in grads.items()}
        self.norms = {
            name: Norm(
                self.w[name + ".weight"],
                self.w[name + ".bias"],
                mean[span],
                var[span],
                self.g[name + ".weight"],
                self.g[name + ".bias"],
            )
            for name, (mean, var) in stats.items()
        }
        self.train = False
        self.tape: list[Any] = []

    def _norm(self, name: str, x: Tensor, length: int, stride: int) -> Tensor:
        """BN-ReLU of x as the next convolution's columns, or pooled (stride `POOL`)."""
        out, saved = self.ops.norm_forward(x, self.norms[name], self.train, length, stride)
        if self.train:
            self.tape.append((name, saved, length, stride))
        return out

    def _norm_backward(
        self, grad: Tensor, centre: Tensor | None = None, residual: Tensor | None = None
    ) -> Tensor:
        """Input gradient of the last taped BN-ReLU (its parameters' gradients to `.grad`)."""
        name, saved, length, stride = self.tape.pop()
        norm = self.norms[name]
        return self.ops.norm_backward(grad, saved, norm, length, stride, centre, residual)

    def _block(self, block: BlockShape, x: Tensor) -> Tensor:
        """One pre-activation block: BN-ReLU-conv, BN-ReLU-conv, plus the shortcut."""
        p, w = block.prefix, self.w
        cols1 = self._norm(p + "bn1", x, block.length, block.stride)
        h = torch.bmm(w[p + "conv1.weight"], cols1)
        skip = x
        if block.projects:
            skip = torch.bmm(w[p + "shortcut.weight"], centre_tap(cols1))
        cols2 = self._norm(p + "bn2", h, block.out_length, 1)
        if self.train:
            self.tape.append((cols1, cols2))
        return torch.baddbmm(skip, w[p + "conv2.weight"], cols2)

    def _block_backward(self, block: BlockShape, grad: Tensor) -> Tensor:
        """Input gradient of a block from its output gradient; weight gradients to `.grad`."""
        p, w, g = block.prefix, self.w, self.g
        cols1, cols2 = self.tape.pop()
        conv1, conv2 = w[p + "conv1.weight"], w[p + "conv2.weight"]
        g[p + "conv2.weight"].copy_(torch.bmm(grad, cols2.transpose(1, 2)))
        dh = self._norm_backward(torch.bmm(conv2.transpose(1, 2), grad))
        g[p + "conv1.weight"].copy_(torch.bmm(dh, cols1.transpose(1, 2)))
        columns_grad = torch.bmm(conv1.transpose(1, 2), dh)
        if not block.projects:
            return self._norm_backward(columns_grad, residual=grad)
        shortcut = w[p + "shortcut.weight"]
        g[p + "shortcut.weight"].copy_(torch.bmm(grad, centre_tap(cols1).transpose(1, 2)))
        centre = torch.bmm(shortcut.transpose(1, 2), grad)
        return self._norm_backward(columns_grad, centre=centre)

    def logits(self, columns: Tensor, batch: int, train: bool = False) -> tuple[Tensor, Tensor]:
        """(logits [C, 10, N], pooled features [C, 2k, N]) from stem columns [5, 20·N];
        BatchNorm in training mode (batch statistics, taped) or eval mode (running)."""
        self.train, self.tape = train, []
        # One product per configuration (not one folded [C·k, 5] matrix): a configuration's
        # result must not depend on how many others share its pass.
        h = torch.bmm(self.w["stem.weight"], columns.expand(self.configs, -1, -1))
        for block in self.arch.block_shapes:
            h = self._block(block, h)
        pooled = self._norm("bn", h, self.arch.final_length, POOL)
        bias = self.w["fc.bias"].unsqueeze(2)
        return torch.baddbmm(bias, self.w["fc.weight"], pooled), pooled

    def train_step(self, columns: Tensor, labels: Tensor, weight: Tensor) -> Tensor:
        """Per-config mean cross-entropy [C] (batch statistics); every gradient to `.grad`.

        `weight` [all C] scales each configuration's loss (0 freezes a diverged one).
        """
        batch = labels.shape[0]
        logits, pooled = self.logits(columns, batch, train=True)
        configs, classes, _ = logits.shape
        lse = torch.logsumexp(logits, 1, keepdim=True)
        picked = logits.gather(1, labels.view(1, 1, batch).expand(configs, 1, batch))
        loss = (lse - picked).mean((1, 2))
        onehot = torch.zeros(classes, batch, dtype=logits.dtype, device=logits.device)
        onehot.scatter_(0, labels.view(1, batch), 1.0)
        scale = (weight[self.span] / batch).view(-1, 1, 1)
        d3 = logits.sub_(lse).exp_().sub_(onehot).mul_(scale)
        g = self.g
        g["fc.weight"].copy_(torch.bmm(d3, pooled.transpose(1, 2)))
        g["fc.bias"].copy_(d3.sum(2))
        grad = self._norm_backward(torch.bmm(self.w["fc.weight"].transpose(1, 2), d3))
        for block in reversed(self.arch.block_shapes):
            grad = self._block_backward(block, grad)
        g["stem.weight"].copy_(torch.bmm(grad, columns.t().expand(configs, -1, -1)))
        return loss
