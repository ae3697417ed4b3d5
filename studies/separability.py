"""Separability of a complete (α, ε) grid and tuning-cost statistics (ALGORITHMS.md).

- interaction fraction: share of the grid's variance not explained by α and ε main effects;
- best-α drift: decades spanned by the best α over the ε columns;
- cost summaries and ratios with percentile-bootstrap confidence intervals over replays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from studies.table import GridTable

N_RESAMPLES = 1000
LEVEL = 0.95


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


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[..., np.ndarray] = np.median,
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of `statistic` (vectorised over axis=1) of `values`."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    stats = statistic(data[rng.integers(0, data.size, (n_resamples, data.size))], axis=1)
    return _interval(stats, level)


def ratio_ci(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """median(numerator) / median(denominator) and its bootstrap interval."""
    a = np.asarray(numerator, dtype=float)
    b = np.asarray(denominator, dtype=float)
    if a.size == 0 or b.size == 0:
        return math.nan, (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    top = np.median(a[rng.integers(0, a.size, (n_resamples, a.size))], axis=1)
    bottom = np.median(b[rng.integers(0, b.size, (n_resamples, b.size))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = top / bottom
    return _safe_div(float(np.median(a)), float(np.median(b))), _interval(ratios, level)


def _interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(stats, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _safe_div(a: float, b: float) -> float:
    return a / b if b else math.inf


def robust_drift(F: np.ndarray, alphas: Sequence[float], delta: float) -> float:
    """Decades spanned by the best α over the ε columns whose best is within δ of f*.

    Columns where training is poor whatever α is say nothing about where α should be; this
    drift looks only at the columns a tuner would be happy to end in.
    """
    values = np.asarray(F, dtype=float)
    column_best = values.min(axis=0)
    good = column_best <= values.min() + delta
    best = np.log10(np.asarray(alphas, dtype=float)[np.argmin(values[:, good], axis=0)])
    return float(best.max() - best.min())
