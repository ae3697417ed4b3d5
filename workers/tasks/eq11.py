"""`eq11`: the paper's Eq. (11), a stochastic convex problem where Adam does not converge.

w ∈ [0, 1]; each sample's gradient is 999·w with probability 1/500, else −1; the expected
loss F(w) = 0.999·w² − 0.998·w is minimised at w* = 499/999. Projected steps with
α_t = α/√t and β1 = 0 (ALGORITHMS.md). Objective: |w_T − w*|; test metric: F(w_T) − F(w*).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from workers.tasks.base import BatchedModel, Task, data_generator

W_STAR = 499 / 999
W0 = 0.5
RARE = 1 / 500


def expected_loss(w: Tensor) -> Tensor:
    """F(w) = 0.999·w² − 0.998·w."""
    return 0.999 * w * w - 0.998 * w


class Eq11Model(BatchedModel):
    """C scalars w, stepped together; the gradient is written directly (no autograd)."""

    def __init__(self, configs: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(configs)
        self.w = torch.full((configs, 1), W0, device=device, dtype=dtype)

    @property
    def parameters(self) -> list[Tensor]:
        """The stacked tensors the optimizer steps."""
        return [self.w]

    def train_step(self, keys: Tensor, weight: Tensor) -> Tensor:
        """Per-config loss on one minibatch; gradients left in `.grad`."""
        rare = (keys < RARE).to(self.w.dtype)  # [batch] uniforms → which samples are rare
        grad = (rare * 999 * self.w - (1 - rare)).mean(1, keepdim=True)  # [C, 1]
        self.w.grad = grad * weight.unsqueeze(1)
        return (self.w - W_STAR).abs().squeeze(1)

    def after_step(self) -> None:
        """Project w back onto [0, 1]."""
        self.w.clamp_(0.0, 1.0)

    def lr_factor(self, step: int) -> float:
        """α_t = α/√t."""
        return step**-0.5

    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Per-config (objective, test metric)."""
        w = self.w.squeeze(1).to(torch.float64)
        return (w - W_STAR).abs(), expected_loss(w) - expected_loss(
            torch.tensor(W_STAR, dtype=w.dtype)
        )


class Eq11(Task):
    """The paper's Eq. (11) (β1 = 0, β2 = 0.99, α_t = α/√t); objective: |w_T − w*|."""

    name = "eq11"
    description = "the paper's Eq. (11): Adam's non-convergence example; objective |w_T − w*|"
    default_steps = 100_000
    default_batch_size = 1
    chance = 1 - W_STAR  # the farthest a projected w can end from w*
    objective_name = "|w_T − w*|"
    test_metric_name = "F(w_T) − F(w*)"
    parallel_jobs = False

    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> Eq11Model:
        """C copies of the model initialised from `seed`."""
        return Eq11Model(configs, device, dtype)

    def batch_keys(self, seed: int, steps: int, batch_size: int, device: torch.device) -> Tensor:
        """Uniform draws [steps, batch]: a sample is rare when its draw is below 1/500."""
        draws = torch.rand(steps, batch_size, generator=data_generator(seed), dtype=torch.float64)
        return draws.to(device)

    def optimizer_defaults(self, optimizer: str) -> dict[str, Any]:
        """β1 = 0, β2 = 0.99 (SGD: no momentum), as in ALGORITHMS.md."""
        return {"momentum": 0.0} if optimizer == "sgd" else {"betas": (0.0, 0.99)}
