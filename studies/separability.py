"""Separability of a complete (α, ε) grid and tuning-cost statistics (ALGORITHMS.md).

- interaction fraction: share of the grid's variance not explained by α and ε main effects;
- best-α drift: decades spanned by the best α over the ε columns (and its robust form);
- cost summaries of replays (their intervals come from `studies.cost_stats`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studies.deltas import DeltaKind, delta_target
from studies.table import GridTable


def objective(table: GridTable) -> np.ndarray:
    """Validation error [i_alpha, j_eps]: the mean over seeds of chance-clipped per-seed errors.

    A diverged seed counts at chance for that seed only (`GridTable.seed_errors`).
    """
    return table.seed_errors().mean(axis=0)


def interaction_fraction(F: np.ndarray) -> float:
    """Σr² / Σ(F − μ)² with r = F − μ − a_i − b_j: 0 when perfectly separable (additive)."""
    values = np.asarray(F, dtype=float)
    centred = values - values.mean()
    total = float(np.sum(centred**2))
    if total == 0.0:
        return 0.0
    rows = centred.mean(axis=1, keepdims=True)
    cols = centred.mean(axis=0, keepdims=True)
    residual = centred - rows - cols
    return float(np.sum(residual**2) / total)


def best_alpha_drift(F: np.ndarray, alphas: Sequence[float]) -> float:
    """Decades spanned by α[argmin_i F[i, j]] over all ε columns j."""
    values = np.asarray(F, dtype=float)
    if values.shape[0] != len(alphas):
        raise ValueError("F must have one row per alpha")
    best = np.log10(np.asarray(alphas, dtype=float)[np.argmin(values, axis=0)])
    return float(best.max() - best.min())


def best_alphas(F: np.ndarray) -> list[int]:
    """The best α index of each ε column (the path the drift measures)."""
    return [int(i) for i in np.argmin(np.asarray(F, dtype=float), axis=0)]


def summarize(costs: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and mean of run costs."""
    values = np.asarray(costs, dtype=float)
    if values.size == 0:
        nan = float("nan")
        return {"median": nan, "q1": nan, "q3": nan, "mean": nan}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "mean": float(values.mean())}


def robust_drift(
    F: np.ndarray, alphas: Sequence[float], delta: float, kind: DeltaKind = "absolute"
) -> float:
    """Decades spanned by the best α over the ε columns whose best is within δ of F's f*.

    Columns where training is poor whatever α is say nothing about where α should be; this
    drift looks only at the columns a tuner would be happy to end in.
    """
    values = np.asarray(F, dtype=float)
    column_best = values.min(axis=0)
    good = column_best <= delta_target(delta, float(values.min()), kind)
    best = np.log10(np.asarray(alphas, dtype=float)[np.argmin(values[:, good], axis=0)])
    return float(best.max() - best.min())
