"""`example-spirals-batched`: the same task with C configurations trained as one model.

Every parameter carries a leading config dimension C (`stacked_leaves`: C copies of one
seed's initial weights), the forward pass is a batched matrix product over C, and
`AutogradModel` differentiates Σ_c weight_c · loss_c, which gives each configuration its own
gradient because configurations never mix. Same data, same initial weights, same minibatches:
each configuration's result equals `example-spirals` trained on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from avatune_example.spirals import Spirals, Splits, error_percent, initial_weights
from workers.tasks.base import AutogradModel, stacked_leaves


class BatchedSpiralsModel(AutogradModel):
    """C stacked MLPs: weights [C, out, in], biases [C, out]."""

    def __init__(
        self,
        data: Splits,
        init: list[Tensor],
        configs: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        super().__init__(configs)
        self.data = data
        self.weights = stacked_leaves(init, configs, device, dtype)

    @property
    def parameters(self) -> list[Tensor]:
        """The stacked tensors the optimizer steps."""
        return self.weights

    def parameter_names(self) -> list[str]:
        """W1, b1, W2, b2, W3, b3."""
        return [f"{kind}{layer}" for layer in (1, 2, 3) for kind in ("W", "b")]

    def logits(self, x: Tensor) -> Tensor:
        """Logits [C, N, 2] of every configuration for the shared inputs x [N, 2]."""
        w1, b1, w2, b2, w3, b3 = self.weights
        h = torch.tanh(torch.einsum("ni,coi->cno", x, w1) + b1.unsqueeze(1))
        h = torch.tanh(torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2)))
        return torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2))

    def loss(self, keys: Tensor) -> Tensor:
        """Mean cross-entropy of each configuration on minibatch `keys`: [C]."""
        logits = self.logits(self.data.x_train[keys])
        labels = self.data.y_train[keys].expand(self.configs, -1)
        return F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(1)

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Validation and test error in percent, each of shape [C]."""
        d = self.data
        return (
            error_percent(self.logits(d.x_val), d.y_val),
            error_percent(self.logits(d.x_test), d.y_test),
        )


class BatchedSpirals(Spirals):
    """`example-spirals` with many configurations per model (the trainer's fast path)."""

    name = "example-spirals-batched"
    description = "two spirals (1000/500/500), MLP 2-H-H-2 tanh, C stacked; validation error %"
    batchable = True

    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> BatchedSpiralsModel:
        """C = `configs` copies of the MLP initialised from `seed`."""
        init = initial_weights(seed, self.hidden)
        return BatchedSpiralsModel(self.data(device, dtype), init, configs, device, dtype)
