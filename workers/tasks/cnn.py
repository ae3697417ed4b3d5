"""`mnist1d-cnn`: the MNIST-1D paper's 1-D CNN (3 conv layers of 25 channels, then linear).

Batched layers: all C configurations see the same minibatch, so the first convolution is
one convolution with C·25 output channels, the next two are grouped convolutions
(groups = C), and the classifier is a batched matrix product. Gradients come from autograd.
No summed dimension mixes configs (C only multiplies output channels or groups), so a config's
result is its own; on CUDA cuDNN may pick another algorithm for another C, hence the bound
`workers.numerics.CUDA_COMPOSITION_RTOL`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from workers.tasks.base import AutogradModel, init_generator, stacked_leaves, uniform_init
from workers.tasks.mlp import chunked_errors
from workers.tasks.mnist1d_data import Splits, mnist1d_on
from workers.tasks.mnist1d_task import Mnist1DTask

CHANNELS = 25
#: (in channels, kernel, stride, padding) of each convolution: as the MNIST-1D ConvBase.
CONVS = ((1, 5, 2, 1), (CHANNELS, 3, 2, 1), (CHANNELS, 3, 2, 1))
LENGTH = 40
CLASSES = 10


def _conv_length(length: int) -> int:
    for _, kernel, stride, padding in CONVS:
        length = (length + 2 * padding - kernel) // stride + 1
    return length


FEATURES = CHANNELS * _conv_length(LENGTH)  # 25 · 5 = 125


def cnn_init(seed: int) -> list[Tensor]:
    """One configuration's float64 parameters with torch's default Conv1d/Linear init."""
    generator = init_generator(seed)
    params = []
    for in_channels, kernel, _, _ in CONVS:
        fan_in = in_channels * kernel
        params.append(uniform_init((CHANNELS, in_channels, kernel), fan_in, generator))
        params.append(uniform_init((CHANNELS,), fan_in, generator))
    params.append(uniform_init((CLASSES, FEATURES), FEATURES, generator))
    params.append(uniform_init((CLASSES,), FEATURES, generator))
    return params


class CNNModel(AutogradModel):
    """C stacked CNNs as one network of grouped convolutions."""

    def __init__(
        self,
        data: Splits,
        init: list[Tensor],
        configs: int,
        device: torch.device,
        dtype: torch.dtype,
    ):
        super().__init__(configs)
        self.data = data
        self.params = stacked_leaves(init, configs, device, dtype)

    @property
    def parameters(self) -> list[Tensor]:
        """The stacked tensors the optimizer steps."""
        return self.params

    def parameter_names(self) -> list[str]:
        """conv1.weight, conv1.bias, …, conv3.bias, linear.weight, linear.bias."""
        convs = [f"conv{k}.{part}" for k in range(1, len(CONVS) + 1) for part in ("weight", "bias")]
        return [*convs, "linear.weight", "linear.bias"]

    def logits(self, x: Tensor) -> Tensor:
        """Logits [C, N, 10] of every configuration for inputs x [N, 40]."""
        c = self.configs
        h = x.unsqueeze(1)
        for layer, (_, _, stride, padding) in enumerate(CONVS):
            weight, bias = self.params[2 * layer], self.params[2 * layer + 1]
            groups = 1 if layer == 0 else c
            h = F.conv1d(
                h,
                weight.flatten(0, 1),
                bias.flatten(),
                stride=stride,
                padding=padding,
                groups=groups,
            )
            h = h.relu()
        features = h.reshape(x.shape[0], c, FEATURES).transpose(0, 1)
        weight, bias = self.params[-2], self.params[-1]
        return torch.baddbmm(bias.unsqueeze(1), features, weight.transpose(1, 2))

    def loss(self, keys: Tensor) -> Tensor:
        """Per-config mean training loss (nats) on one minibatch."""
        logits = self.logits(self.data.x_train[keys])
        labels = self.data.y_train[keys].expand(self.configs, -1)
        return F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(1)

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Per-config (objective, test metric)."""

        def logits(x: Tensor) -> Tensor:
            return self.logits(x).transpose(1, 2)

        return (
            chunked_errors(logits, self.data.x_val, self.data.y_val),
            chunked_errors(logits, self.data.x_test, self.data.y_test),
        )


class MnistCNN(Mnist1DTask):
    """MNIST-1D, 1-D CNN (3 conv layers of 25 channels + linear); objective: validation error %."""

    name = "mnist1d-cnn"
    description = "MNIST-1D, CNN: 3 conv layers of 25 channels (ReLU) + linear; validation error %"

    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> CNNModel:
        """C copies of the model initialised from `seed`."""
        return CNNModel(mnist1d_on(device, dtype), cnn_init(seed), configs, device, dtype)
