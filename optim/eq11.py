"""The paper's Eq. (11): a stochastic convex problem on which Adam does not converge.

w ∈ [0, 1]; each step g = 999·w with probability 1/500, else g = −1, so the expected
loss is F(w) = 0.999·w² − 0.998·w with minimiser w* = 499/999. Adam (β1 = 0) is pushed
towards w = 1; Delayed Adam, whose preconditioner does not see the current gradient,
converges to w*.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from optim.registry import get_optimizer

W_STAR = 499 / 999


def run_eq11(
    optimizer: str,
    steps: int = 100_000,
    seeds: int = 3,
    lr: float = 0.1,
    beta2: float = 0.99,
    eps: float = 1e-8,
    w0: float = 0.5,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """Final w of `seeds` independent runs (stacked as configs), projected steps, α_t = α/√t."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.full((seeds, 1), w0, dtype=torch.float64)
    opt = get_optimizer(optimizer, [w], lr=lr, eps=eps, stacked=True, betas=(0.0, beta2))
    group = opt.param_groups[0]
    for t in range(1, steps + 1):
        rare = torch.rand(seeds, 1, generator=generator, dtype=torch.float64) < 1 / 500
        w.grad = torch.where(rare, 999 * w, -1.0)
        group["lr"] = lr / t**0.5
        opt.step()
        w.clamp_(0.0, 1.0)
        if progress is not None and t % 1000 == 0:
            progress(1000)
    return w.squeeze(1)
