"""`mnist1d-mlp`: a 40-100-100-10 ReLU MLP on MNIST-1D, the default proxy task.

The C configurations live in one flat buffer [C, P] (one tensor for the optimizer) with
views per layer in torch's Linear layout (weight [out, in]). Forward and backward are
written out as batched matrix products over the config dimension, activations kept
feature-major ([C, features, batch]), which is several times faster than autograd or
vmap at this size and makes a full 21×21 grid take seconds per core-minute.

No product sums across configs: the first layer's matmul folds C into its output rows only,
the rest are bmm/baddbmm over C. On CUDA cuBLAS may still pick another kernel (summation
order) for another C, hence the bound `workers.numerics.CUDA_COMPOSITION_RTOL`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from optim.diagnostics import Segment
from workers.tasks.base import BatchedModel, init_generator, uniform_init
from workers.tasks.mnist1d_data import Splits, mnist1d_on
from workers.tasks.mnist1d_task import Mnist1DTask

#: (out, in) of each Linear layer.
LAYERS = ((100, 40), (100, 100), (10, 100))


def mlp_init(seed: int, layers: tuple[tuple[int, int], ...] = LAYERS) -> Tensor:
    """One configuration's flat float64 parameters: W1, b1, W2, b2, … with Linear's default init."""
    generator = init_generator(seed)
    parts = []
    for out, fan_in in layers:
        parts.append(uniform_init((out, fan_in), fan_in, generator).flatten())
        parts.append(uniform_init((out,), fan_in, generator))
    return torch.cat(parts)


def flat_segments(layers: tuple[tuple[int, int], ...]) -> list[Segment]:
    """W1, b1, W2, b2, … as runs of one configuration's flat parameters (as `flat_views`)."""
    segments, offset = [], 0
    for layer, (out, fan_in) in enumerate(layers, 1):
        for name, size in ((f"W{layer}", out * fan_in), (f"b{layer}", out)):
            segments.append(Segment(name, 0, offset, offset + size))
            offset += size
    return segments


def flat_views(flat: Tensor, layers: tuple[tuple[int, int], ...]) -> list[Tensor]:
    """Views [C, out, in] (weights) and [C, out, 1] (biases) into a flat buffer [C, P]."""
    views, offset = [], 0
    for out, fan_in in layers:
        for shape in ((out, fan_in), (out, 1)):
            size = shape[0] * shape[1]
            views.append(flat[:, offset : offset + size].view(flat.shape[0], *shape))
            offset += size
    return views


#: Examples per evaluation chunk: bounds the activations [C, features, chunk] of a large C.
EVAL_CHUNK = 1000


def chunked_errors(
    logits: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor, chunk: int = EVAL_CHUNK
) -> Tensor:
    """Classification error in percent per config over all of x; NaN where logits are non-finite.

    `logits(x)` gives [C, classes, n]; it runs on `chunk` examples at a time.
    """
    wrong, finite = [], []
    for start in range(0, x.shape[0], chunk):
        part = logits(x[start : start + chunk])
        wrong.append((part.argmax(1) != labels[start : start + chunk]).sum(1))
        finite.append(torch.isfinite(part).flatten(1).all(1))
    percent = torch.stack(wrong).sum(0).to(torch.float64) * 100 / x.shape[0]
    return torch.where(torch.stack(finite).all(0), percent, torch.nan)


class MLPModel(BatchedModel):
    """C stacked MLPs with a hand-written forward and backward pass."""

    def __init__(
        self, data: Splits, init: Tensor, configs: int, device: torch.device, dtype: torch.dtype
    ):
        super().__init__(configs)
        self.data = data
        self.flat = init.to(device=device, dtype=dtype).repeat(configs, 1)
        self.flat.grad = torch.zeros_like(self.flat)
        self.weights = flat_views(self.flat, LAYERS)
        self.grads = flat_views(self.flat.grad, LAYERS)
        self.classes = LAYERS[-1][0]

    @property
    def parameters(self) -> list[Tensor]:
        """The stacked tensors the optimizer steps."""
        return [self.flat]

    def segments(self) -> list[Segment]:
        """The layers W1, b1, W2, b2, W3, b3 of the flat buffer."""
        return flat_segments(LAYERS)

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Hidden activations and logits, feature-major: [C, 100, N], [C, 100, N], [C, 10, N]."""
        w1, b1, w2, b2, w3, b3 = self.weights
        h1 = torch.matmul(w1, x.t()).add_(b1).relu_()
        h2 = torch.baddbmm(b2, w2, h1).relu_()
        return h1, h2, torch.baddbmm(b3, w3, h2)

    @torch.no_grad()
    def train_step(self, keys: Tensor, weight: Tensor) -> Tensor:
        """Per-config loss on one minibatch; gradients left in `.grad`."""
        x, y = self.data.x_train[keys], self.data.y_train[keys]
        batch = keys.shape[0]
        h1, h2, logits = self._forward(x)
        lse = torch.logsumexp(logits, 1, keepdim=True)
        picked = logits.gather(1, y.view(1, 1, batch).expand(self.configs, 1, batch))
        loss = (lse - picked).mean((1, 2))
        onehot = torch.zeros(self.classes, batch, dtype=x.dtype, device=x.device)
        onehot.scatter_(0, y.view(1, batch), 1.0)
        d3 = logits.sub_(lse).exp_().sub_(onehot).mul_((weight / batch).view(-1, 1, 1))
        _, _, w2, _, w3, _ = self.weights
        g1, gb1, g2, gb2, g3, gb3 = self.grads
        torch.bmm(d3, h2.transpose(1, 2), out=g3)
        torch.sum(d3, 2, keepdim=True, out=gb3)
        d2 = torch.ops.aten.threshold_backward(torch.bmm(w3.transpose(1, 2), d3), h2, 0.0)
        torch.bmm(d2, h1.transpose(1, 2), out=g2)
        torch.sum(d2, 2, keepdim=True, out=gb2)
        d1 = torch.ops.aten.threshold_backward(torch.bmm(w2.transpose(1, 2), d2), h1, 0.0)
        g1.copy_(torch.mm(d1.view(-1, batch), x).view_as(g1))
        torch.sum(d1, 2, keepdim=True, out=gb1)
        return loss

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Per-config (objective, test metric)."""
        logits = self.logits
        return (
            chunked_errors(logits, self.data.x_val, self.data.y_val),
            chunked_errors(logits, self.data.x_test, self.data.y_test),
        )

    def logits(self, x: Tensor) -> Tensor:
        """Logits [C, 10, N] of every configuration for inputs x [N, 40]."""
        return self._forward(x)[2]


class MnistMLP(Mnist1DTask):
    """MNIST-1D, MLP 40-100-100-10 (ReLU); objective: validation error %."""

    name = "mnist1d-mlp"
    description = "MNIST-1D (4000/4000/4000), MLP 40-100-100-10 ReLU; validation error %"

    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> MLPModel:
        """C copies of the model initialised from `seed`."""
        return MLPModel(mnist1d_on(device, dtype), mlp_init(seed), configs, device, dtype)

    def step_flops(self, batch_size: int) -> float:
        """Nominal matrix-product FLOPs of one training step of one configuration: forward,
        weight gradients, and input gradients of every layer but the first (its input is data)."""
        forward = sum(2 * batch_size * out * fan_in for out, fan_in in LAYERS)
        input_grads = sum(2 * batch_size * out * fan_in for out, fan_in in LAYERS[1:])
        return float(2 * forward + input_grads)
