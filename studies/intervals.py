"""Percentile intervals of bootstrap replicates, and ratios that keep censoring visible."""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95


def percentile_ci(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of `samples` (±∞ allowed, nan dropped).

    Uses the inverted empirical CDF, without interpolation, so an infinite replicate (a
    censored median) gives an unbounded end rather than nan.
    """
    values = np.asarray(samples, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def ratios(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Element-wise top / bottom of medians that may be ∞ (censored).

    ∞/x = ∞, x/∞ = 0, and ∞/∞ = 1: with both medians censored a replicate carries no
    evidence either way, so it counts as no difference.
    """
    a = np.asarray(top, dtype=float)
    b = np.asarray(bottom, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out = np.where(np.isinf(a) & np.isinf(b), 1.0, out)
    return np.where((b == 0) & (a > 0) & np.isfinite(a), np.inf, out)
