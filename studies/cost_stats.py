"""Tuning-cost statistics: Kaplan–Meier medians, success rates, cost ratios and CGLD gains.

Point estimates come from the main replay on each grid's mean table; intervals from the
hierarchical bootstrap (`studies.bootstrap`), so they hold training noise as well as tuner
noise. A median that the censored runs leave undetermined (more than half never reached δ)
is a bound: the median of the runs' stopping costs is then a lower bound on it, since a
censored run's true cost exceeds its stopping cost. A ratio with such a median is reported
as a bound (`bound` ">" or "<"), never as a value with an interval around it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from studies.bootstrap import BootstrapReplay
from studies.intervals import percentile_ci, ratios
from studies.replay import ReplayResult
from studies.survival import km_median, km_medians, success_rate

Interval = tuple[float, float]
NO_CI: Interval = (math.nan, math.nan)


@dataclass(frozen=True)
class CostSummary:
    """One tuner on one grid at one δ."""

    median: float  # Kaplan–Meier median; ∞ when censored
    median_bound: float  # median of stopping costs: the median itself, or its lower bound
    censored_median: bool
    ci: Interval  # of the KM median, hierarchical bootstrap
    success_rate: float
    success_ci: Interval
    q1: float
    q3: float
    mean: float
    n_censored: int
    runs: int


@dataclass(frozen=True)
class Ratio:
    """median(a) / median(b): a value with its CI, or a bound when a median is censored."""

    ratio: float | None
    ci: Interval
    bound: Literal[">", "<"] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def cost_summary(
    replay: ReplayResult, boot: BootstrapReplay | None, name: str, tuner: str, delta: float
) -> CostSummary:
    """KM median, success rate and their intervals for `tuner` on grid `name` at δ."""
    stats = replay.table(name).tuners[tuner].at(delta)
    costs = np.asarray(stats.costs, dtype=float)
    censored = np.asarray(stats.censored, dtype=bool)
    median = km_median(costs, censored)
    ci, success_ci = NO_CI, NO_CI
    if boot is not None and tuner in boot.tables.get(name, {}):
        ci = percentile_ci(_boot_medians(boot, name, tuner, delta))
        success_ci = percentile_ci(np.mean(~boot.tables[name][tuner].at(delta)[1], axis=1))
    return CostSummary(
        median=median,
        median_bound=float(np.median(costs)),
        censored_median=math.isinf(median),
        ci=ci,
        success_rate=success_rate(costs, censored),
        success_ci=success_ci,
        q1=stats.q1,
        q3=stats.q3,
        mean=stats.mean,
        n_censored=stats.n_censored,
        runs=len(stats.costs),
    )


def cost_ratio(
    replay: ReplayResult,
    boot: BootstrapReplay | None,
    top: str,
    bottom: str,
    tuner: str,
    delta: float,
) -> Ratio:
    """median cost of grid `top` / that of grid `bottom` for one tuner, with its interval."""
    return _paired_ratio(replay, boot, (top, tuner), (bottom, tuner), delta)[0]


def cgld_gain(
    replay: ReplayResult, boot: BootstrapReplay | None, name: str, delta: float
) -> tuple[Ratio, np.ndarray | None]:
    """cost(GLD) / cost(CGLD) on grid `name` (paired on the same resampled tables)."""
    return _paired_ratio(replay, boot, (name, "gld"), (name, "cgld"), delta)


def _paired_ratio(
    replay: ReplayResult,
    boot: BootstrapReplay | None,
    top: tuple[str, str],
    bottom: tuple[str, str],
    delta: float,
) -> tuple[Ratio, np.ndarray | None]:
    """median cost of (grid, tuner) `top` / that of `bottom`, and the replicates' ratios."""
    a = cost_summary(replay, boot, *top, delta)
    b = cost_summary(replay, boot, *bottom, delta)
    samples = None
    if boot is not None:
        samples = ratios(_boot_medians(boot, *top, delta), _boot_medians(boot, *bottom, delta))
    return _ratio(a, b, samples), samples


def gain_interaction(
    replay: ReplayResult, boot: BootstrapReplay | None, reference: str, other: str, delta: float
) -> Ratio:
    """The optimizer × tuner interaction: CGLD gain of `reference` ÷ CGLD gain of `other`."""
    ref, ref_samples = cgld_gain(replay, boot, reference, delta)
    oth, oth_samples = cgld_gain(replay, boot, other, delta)
    if ref.bound or oth.bound or ref.ratio is None or oth.ratio is None:
        return Ratio(None, NO_CI)
    ci = NO_CI
    if ref_samples is not None and oth_samples is not None:
        n = min(ref_samples.size, oth_samples.size)
        ci = percentile_ci(ratios(ref_samples[:n], oth_samples[:n]))
    return Ratio(float(ratios(np.array(ref.ratio), np.array(oth.ratio))), ci)


def _boot_medians(boot: BootstrapReplay, name: str, tuner: str, delta: float) -> np.ndarray:
    costs, censored = boot.tables[name][tuner].at(delta)
    return km_medians(costs, censored)


def _ratio(a: CostSummary, b: CostSummary, samples: np.ndarray | None) -> Ratio:
    """The point ratio of two summaries; bounds where a median is censored."""
    if a.censored_median and b.censored_median:
        return Ratio(None, NO_CI)
    if a.censored_median:
        return Ratio(a.median_bound / b.median, _lower_only(samples), ">")
    if b.censored_median:
        return Ratio(a.median / b.median_bound, _upper_only(samples), "<")
    value = float(ratios(np.array(a.median), np.array(b.median)))
    return Ratio(value, NO_CI if samples is None else percentile_ci(samples))


def _lower_only(samples: np.ndarray | None) -> Interval:
    """A bound's interval keeps only its lower end (the upper is unbounded)."""
    return NO_CI if samples is None else (percentile_ci(samples)[0], math.inf)


def _upper_only(samples: np.ndarray | None) -> Interval:
    return NO_CI if samples is None else (0.0, percentile_ci(samples)[1])


def summary_dict(summary: CostSummary) -> dict[str, Any]:
    """JSON-ready form of a cost summary."""
    return asdict(summary)
