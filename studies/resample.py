"""Resampled grid tables: training noise, drawn from a table's own seeds.

A cell's bootstrap value is the mean of S seeds drawn with replacement from that cell's S
seeds (the plain nonparametric bootstrap of the seed mean). Cells are resampled
independently; a table with one seed has no training noise to draw (every replicate is the
table itself).

Why plain, not the adjusted residual draw (Davison & Hinkley 1997, §3.3) that would give
the mean its full estimated variance s²/S instead of (S − 1)/S · s²/S: the statistics
built on these tables are min-type (f*, the cells within δ of it, the costs to reach
them), and a bootstrap table carries the observed table's noise plus its own, so their
spread is already overstated. On the synthetic null pairs of
tests/studies/test_calibration.py the plain draw gives CGLD cost-ratio intervals about
three times wider (in log) than the ratio's true spread over independent trainings; the
adjusted draw would be wider still. Conservative intervals are the safe side for a claim.
"""

from __future__ import annotations

import numpy as np

from studies.table import GridTable


def resampled_means(
    seed_errors: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    chance: float | None = None,
) -> np.ndarray:
    """`n` bootstrap mean tables [n, A, E] from per-seed values [S, A, E]."""
    values = np.asarray(seed_errors, dtype=float)
    seeds = values.shape[0]
    mean = values.mean(axis=0)
    if seeds == 1:
        return np.broadcast_to(mean, (n, *mean.shape)).copy()
    picks = rng.integers(0, seeds, size=(n, seeds, *mean.shape))
    tables = np.take_along_axis(values[None], picks, axis=1).mean(axis=1)
    return tables if chance is None else np.minimum(tables, chance)


def table_resamples(table: GridTable, n: int, seed: int) -> np.ndarray:
    """`n` bootstrap mean tables of `table`, reproducible from `seed`."""
    return resampled_means(table.seed_errors(), n, np.random.default_rng(seed), chance=table.chance)


def seed_se(seed_errors: np.ndarray) -> np.ndarray:
    """Standard error of each cell's seed mean, s / sqrt(S); nan with one seed."""
    values = np.asarray(seed_errors, dtype=float)
    if values.shape[0] < 2:
        return np.full(values.shape[1:], np.nan)
    return values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
