"""Tunability: the expected best validation error after k random-search trials on the grid.

Following Sivaprasad et al. (ICML 2020, "Optimizer Benchmarking Needs to Account for
Hyperparameter Tuning"), an optimizer is more tunable when a small random-search budget k
already finds a low error. Random search here draws k grid cells uniformly and independently,
with replacement, so the expected best has a closed form from order statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_KS = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class TunabilityCurve:
    """Expected best (lowest) error `expected[m]` after `ks[m]` random-search trials."""

    ks: tuple[int, ...]
    expected: tuple[float, ...]


def expected_best(values: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """E[min of k uniform draws with replacement] over the last axis of N cells: [..., len(ks)].

    With v sorted ascending, P(min = v_(i)) = ((N − i + 1)/N)^k − ((N − i)/N)^k, so
    E[min] = Σ_i v_(i) · (((N − i + 1)/N)^k − ((N − i)/N)^k). Lower is better; k = 1 gives
    the mean and k → ∞ the minimum.
    """
    data = np.asarray(values, dtype=float)
    budgets = np.asarray(ks, dtype=int)
    if data.ndim == 0 or data.shape[-1] == 0:
        raise ValueError("values need at least one cell on the last axis")
    if budgets.ndim != 1 or np.any(budgets < 1):
        raise ValueError("ks must be a sequence of trial counts >= 1")
    n_cells = data.shape[-1]
    # tail[i] = P(a draw lands at sorted position >= i) = (N − i)/N for 0-based i = 0..N
    tail = (n_cells - np.arange(n_cells + 1)) / n_cells
    powered = tail[:, None] ** budgets[None, :]
    weights = powered[:-1] - powered[1:]
    return np.sort(data, axis=-1) @ weights


def tunability_curve(values: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> TunabilityCurve:
    """The curve of one grid (any shape, e.g. [A, E]; its cells are the search space)."""
    expected = expected_best(np.ravel(np.asarray(values, dtype=float)), ks)
    return TunabilityCurve(ks=tuple(int(k) for k in ks), expected=tuple(map(float, expected)))
