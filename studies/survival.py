"""Kaplan–Meier estimates of tuning cost under right-censoring.

A tuning run that reached its target at cost c is an event at c; a run stopped at its budget
c without reaching the target is censored at c ("needs more than c"). The Kaplan–Meier
product-limit estimator S(t) = Π_{t_i ≤ t} (1 − d_i / n_i) is the probability that a run
needs more than t, with d_i events among the n_i runs still at risk at event time t_i. At a
tied time the events come before the censorings (the censored runs count as at risk there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# S(t) is a product of rounded ratios: a value in (0.5, 0.5 + _HALF_TOL] is taken as 0.5, so
# that e.g. 5/6 · 4/5 · 3/4 still counts as reaching the median.
_HALF_TOL = 1e-9


@dataclass(frozen=True)
class KaplanMeier:
    """The step function S: `survival[k]` is S(t) just after the event time `times[k]`."""

    times: np.ndarray
    survival: np.ndarray


def _runs(costs: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Costs as float and censoring flags as bool, checked to match in shape."""
    cost = np.asarray(costs, dtype=float)
    flag = np.asarray(censored, dtype=bool)
    if cost.shape != flag.shape:
        raise ValueError(f"costs {cost.shape} and censored {flag.shape} must have one shape")
    return cost, flag


def kaplan_meier(costs: np.ndarray, censored: np.ndarray) -> KaplanMeier:
    """The product-limit curve of one set of runs (1-D `costs`, True where censored)."""
    cost, flag = _runs(costs, censored)
    if cost.ndim != 1:
        raise ValueError("kaplan_meier takes one 1-D set of runs")
    times, inverse = np.unique(cost, return_inverse=True)
    events = np.bincount(inverse, weights=~flag, minlength=times.size)
    leaving = np.bincount(inverse, minlength=times.size)
    at_risk = cost.size - np.concatenate(([0], np.cumsum(leaving)[:-1]))
    has_event = events > 0
    factors = 1.0 - events[has_event] / at_risk[has_event]
    return KaplanMeier(times=times[has_event], survival=np.cumprod(factors))


def km_median(costs: np.ndarray, censored: np.ndarray) -> float:
    """Smallest event time with S(t) ≤ 0.5; inf when S stays above 0.5, nan for no runs."""
    cost, _ = _runs(costs, censored)
    if cost.size == 0:
        return math.nan
    curve = kaplan_meier(costs, censored)
    reached = curve.survival <= 0.5 + _HALF_TOL
    return float(curve.times[np.argmax(reached)]) if reached.any() else math.inf


def success_rate(costs: np.ndarray, censored: np.ndarray) -> float:
    """Fraction of runs that reached the target (not censored); nan for no runs."""
    cost, flag = _runs(costs, censored)
    return float(np.mean(~flag)) if cost.size else math.nan


def km_medians(costs: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """`km_median` of each row of [B, R] runs at once (bootstrap replicates).

    Rows are sorted by (cost, censored) so that tied events precede censorings; processing the
    tied events one at a time gives the same S after the tie, ((n − 1)/n)·…·((n − d)/(n − d + 1))
    = (n − d)/n, and S only falls within a tie, so the first position where S ≤ 0.5 has the
    grouped estimator's median time.
    """
    cost, flag = _runs(costs, censored)
    if cost.ndim != 2:
        raise ValueError("km_medians takes [B, R] arrays of runs")
    n_rows, n_runs = cost.shape
    if n_runs == 0:
        return np.full(n_rows, math.nan)
    order = np.lexsort((flag, cost), axis=-1)
    sorted_cost = np.take_along_axis(cost, order, axis=-1)
    is_event = ~np.take_along_axis(flag, order, axis=-1)
    at_risk = n_runs - np.arange(n_runs, dtype=float)
    survival = np.cumprod(np.where(is_event, 1.0 - 1.0 / at_risk, 1.0), axis=-1)
    reached = is_event & (survival <= 0.5 + _HALF_TOL)
    first = np.argmax(reached, axis=-1)
    median = np.take_along_axis(sorted_cost, first[:, None], axis=-1)[:, 0]
    return np.where(reached.any(axis=-1), median, math.inf)
