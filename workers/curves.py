"""Learning curves: per-step training losses reduced to at most 100 window means."""

from __future__ import annotations

import torch
from torch import Tensor

MAX_POINTS = 100


def window_means(losses: Tensor, points: int = MAX_POINTS) -> Tensor:
    """Means of ≤ `points` contiguous windows of the steps: [steps, C] → [windows, C]."""
    windows = torch.tensor_split(losses.to(torch.float64), min(points, losses.shape[0]))
    return torch.stack([w.mean(0) for w in windows])


def window_ends(steps: int, points: int = MAX_POINTS) -> list[int]:
    """The step (exclusive) at which each window of `window_means` ends."""
    count = min(points, steps)
    base, extra = divmod(steps, count)
    ends, end = [], 0
    for i in range(count):
        end += base + (1 if i < extra else 0)
        ends.append(end)
    return ends


def curves(losses: Tensor, points: int = MAX_POINTS) -> list[list[float]]:
    """One curve per config; a diverged config's curve stops before its first non-finite loss."""
    if losses.shape[0] == 0:
        return [[] for _ in range(losses.shape[1])]
    means = window_means(losses, points).cpu()
    ends = torch.tensor(window_ends(losses.shape[0], points))
    bad = ~torch.isfinite(losses).cpu()
    first_bad = torch.where(bad.any(0), bad.to(torch.int8).argmax(0), losses.shape[0])
    out = []
    for c in range(losses.shape[1]):
        keep = int((ends <= first_bad[c]).sum())
        out.append(means[:keep, c].tolist())
    return out
