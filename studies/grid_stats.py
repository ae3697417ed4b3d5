"""Grid-level statistics of one replicated table, each with a hierarchical-bootstrap interval.

Every interval comes from the same `GRID_RESAMPLES` resampled mean tables
(`studies.resample`): a statistic is recomputed on each, f* included, and its central 95 %
percentile interval reported. With one seed per cell there is no training noise to resample,
and intervals collapse to the point (the report says so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from studies.anova import MARGIN, trainable_interaction, trainable_mask, two_way_anova
from studies.deltas import DeltaKind, delta_gap
from studies.intervals import percentile_ci
from studies.line_search import line_search_regrets
from studies.resample import seed_se
from studies.separability import interaction_fraction, robust_drift
from studies.table import GridTable
from studies.tunability import DEFAULT_KS, expected_best

GRID_RESAMPLES = 500

Interval = tuple[float, float]


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95 % bootstrap interval."""

    value: float
    ci: Interval

    @classmethod
    def of(cls, value: float, samples: np.ndarray) -> Estimate:
        """`value` with the percentile interval of its bootstrap `samples`."""
        return cls(float(value), percentile_ci(samples))


@dataclass(frozen=True)
class Noise:
    """Training noise of a replicated table: per-cell seed SE and the SE of f*."""

    seeds: int
    seed_se_median: float  # over trainable cells
    seed_se_best: float  # of the cell that holds f*
    f_star_se: float  # bootstrap SD of the re-derived f* (includes the winner's curse)
    delta: float
    delta_gap: float  # how far above f* the main δ's target lies, in the objective's unit
    delta_over_se: float  # delta_gap / f_star_se


@dataclass(frozen=True)
class LineSearchStats:
    """Two-line-search regret from every start ε₀ (and the optimizer's default ε)."""

    starts: list[float]
    regrets: list[float]
    median: Estimate
    worst: Estimate
    default_start: float | None
    default_regret: Estimate | None
    cost: int
    within_delta: float  # share of starts whose regret is ≤ δ (as a gap above f*)


@dataclass(frozen=True)
class Tunability:
    """Expected best error after k random trials, with 95 % bootstrap intervals."""

    ks: list[int]
    expected: list[float]
    lo: list[float]
    hi: list[float]


@dataclass(frozen=True)
class AnovaStats:
    """The interaction F-test of the replicated table (residual = seed noise)."""

    f_interaction: float
    p_interaction: float
    df_interaction: int
    df_residual: int
    ms_residual: float
    f_alpha: float
    f_eps: float


@dataclass(frozen=True)
class GridStats:
    """Everything the report says about one grid beyond its best point."""

    noise: Noise
    f_star: Estimate
    interaction: Estimate
    trainable_interaction: Estimate
    trainable_cells: int
    anova: AnovaStats | None
    robust_drift: Estimate
    line_search: LineSearchStats
    tunability: Tunability

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for metrics.json."""
        return asdict(self)


def grid_stats(
    table: GridTable,
    resamples: np.ndarray,
    *,
    delta: float,
    delta_kind: DeltaKind = "absolute",
    default_eps: float | None = None,
    ks: tuple[int, ...] = DEFAULT_KS,
) -> GridStats:
    """The statistics of `table` with intervals from its `resamples` [B, A, E].

    δ reads in `delta_kind`; a resample's robust drift uses that resample's own f*.
    """
    seeds = table.seed_errors()
    mean = seeds.mean(axis=0)
    chance = table.chance if table.chance is not None else float(mean.max())
    f_stars = resamples.min(axis=(1, 2))
    se = seed_se(seeds)
    mask = trainable_mask(mean, chance, MARGIN)
    best = np.unravel_index(int(np.argmin(mean)), mean.shape)
    f_star_se = float(f_stars.std(ddof=1)) if table.seeds > 1 else math.nan
    gap = float(delta_gap(delta, float(mean.min()), delta_kind))
    noise = Noise(
        seeds=table.seeds,
        seed_se_median=float(np.median(se[mask])) if mask.any() else math.nan,
        seed_se_best=float(se[best]),
        f_star_se=f_star_se,
        delta=delta,
        delta_gap=gap,
        delta_over_se=gap / f_star_se if f_star_se > 0 else math.nan,
    )
    return GridStats(
        noise=noise,
        f_star=Estimate.of(mean.min(), f_stars),
        interaction=Estimate.of(
            interaction_fraction(mean), np.array([interaction_fraction(t) for t in resamples])
        ),
        trainable_interaction=Estimate.of(
            trainable_interaction(mean, chance),
            np.array([trainable_interaction(t, chance) for t in resamples]),
        ),
        trainable_cells=int(mask.sum()),
        anova=_anova(seeds),
        robust_drift=Estimate.of(
            robust_drift(mean, table.alphas, delta, delta_kind),
            np.array([robust_drift(t, table.alphas, delta, delta_kind) for t in resamples]),
        ),
        line_search=_line_search(table, mean, resamples, gap, default_eps),
        tunability=_tunability(mean, resamples, ks),
    )


def _anova(seeds: np.ndarray) -> AnovaStats | None:
    if seeds.shape[0] < 2:
        return None
    a = two_way_anova(seeds)
    return AnovaStats(
        f_interaction=a.f_interaction,
        p_interaction=a.p_interaction,
        df_interaction=a.df_interaction,
        df_residual=a.df_residual,
        ms_residual=a.ms_residual,
        f_alpha=a.f_alpha,
        f_eps=a.f_eps,
    )


def _line_search(
    table: GridTable,
    mean: np.ndarray,
    resamples: np.ndarray,
    gap: float,
    default_eps: float | None,
) -> LineSearchStats:
    point = line_search_regrets(mean)
    boot = line_search_regrets(resamples)
    default = None
    if default_eps is not None:
        logs = np.abs(np.log10(np.asarray(table.epsilons)) - math.log10(default_eps))
        default = int(np.argmin(logs))
    return LineSearchStats(
        starts=list(table.epsilons),
        regrets=[float(r) for r in point],
        median=Estimate.of(np.median(point), np.median(boot, axis=1)),
        worst=Estimate.of(point.max(), boot.max(axis=1)),
        default_start=None if default is None else table.epsilons[default],
        default_regret=None if default is None else Estimate.of(point[default], boot[:, default]),
        cost=len(table.alphas) + len(table.epsilons) - 1,
        within_delta=float(np.mean(point <= gap)),
    )


def _tunability(mean: np.ndarray, resamples: np.ndarray, ks: tuple[int, ...]) -> Tunability:
    point = expected_best(mean.ravel(), ks)
    boot = expected_best(resamples.reshape(resamples.shape[0], -1), ks)
    bounds = [percentile_ci(boot[:, k]) for k in range(len(ks))]
    return Tunability(
        ks=list(ks),
        expected=[float(v) for v in point],
        lo=[b[0] for b in bounds],
        hi=[b[1] for b in bounds],
    )
