"""Learning curves: ≤ 100 window means, cut before a diverged run's first non-finite loss."""

from __future__ import annotations

import math

import torch

from workers.curves import MAX_POINTS, curves, window_ends, window_means


def test_short_runs_keep_every_step() -> None:
    losses = torch.arange(12, dtype=torch.float64).view(6, 2)
    assert curves(losses) == [[0.0, 2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 3.0, 5.0, 7.0, 9.0, 11.0]]


def test_long_runs_average_windows() -> None:
    losses = torch.arange(1000, dtype=torch.float64).view(1000, 1)
    (curve,) = curves(losses)
    assert len(curve) == MAX_POINTS
    assert curve[0] == 4.5 and curve[-1] == 994.5
    assert window_ends(1000)[-1] == 1000
    assert window_means(torch.ones(1001, 3)).shape == (100, 3)
    assert window_ends(1001)[0] == 11 and len(window_ends(1001)) == 100


def test_curve_stops_before_divergence() -> None:
    losses = torch.ones(300, 2, dtype=torch.float64)
    losses[151, 1] = math.inf
    losses[152:, 1] = 0.5  # finite again after the trainer froze it: still cut
    kept = curves(losses)
    assert len(kept[0]) == 100
    assert len(kept[1]) == 50 and all(v == 1.0 for v in kept[1])
