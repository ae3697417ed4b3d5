"""The conclusion rule, case by case, and the cost summaries it reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studies.conclusion import Evidence, conclude
from studies.cost_stats import CostSummary, _ratio
from studies.intervals import percentile_ci, ratios


@pytest.mark.parametrize(
    ("difference", "ratio", "seeds", "expected"),
    [
        ((-0.3, -0.1), (1.5, 4.0), 3, "supported"),
        ((-0.3, -0.1), (0.8, 4.0), 3, "inconclusive"),
        ((-0.3, 0.1), (1.5, 4.0), 3, "inconclusive"),
        ((0.1, 0.3), (0.2, 0.9), 3, "not supported"),
        ((0.1, 0.3), (1.5, 4.0), 3, "inconclusive"),
        ((-0.3, -0.1), (1.5, None), 3, "supported"),  # a bound: the lower end counts
        ((-0.3, -0.1), (1.5, 4.0), 1, "inconclusive"),
        ((None, None), (None, None), 3, "inconclusive"),
    ],
)
def test_rule(difference, ratio, seeds: int, expected: str) -> None:
    conclusion, reason = conclude(Evidence(difference, ratio, seeds))
    assert conclusion == expected
    assert reason


def _summary(median: float, bound: float) -> CostSummary:
    return CostSummary(
        median=median,
        median_bound=bound,
        censored_median=math.isinf(median),
        ci=(math.nan, math.nan),
        success_rate=0.4,
        success_ci=(math.nan, math.nan),
        q1=0.0,
        q3=0.0,
        mean=0.0,
        n_censored=6,
        runs=10,
    )


def test_a_censored_median_makes_the_ratio_a_bound() -> None:
    samples = np.array([2.0, 3.0, np.inf, np.inf, 5.0])
    ratio = _ratio(_summary(math.inf, 120.0), _summary(40.0, 40.0), samples)
    assert ratio.bound == ">" and ratio.ratio == 3.0
    assert ratio.ci[1] == math.inf and ratio.ci[0] == percentile_ci(samples)[0]
    lower = _ratio(_summary(40.0, 40.0), _summary(math.inf, 80.0), samples)
    assert lower.bound == "<" and lower.ratio == 0.5 and lower.ci[0] == 0.0
    both = _ratio(_summary(math.inf, 1.0), _summary(math.inf, 1.0), samples)
    assert both.ratio is None


def test_ratios_of_censored_medians() -> None:
    out = ratios(np.array([np.inf, 4.0, np.inf, 3.0]), np.array([2.0, np.inf, np.inf, 2.0]))
    assert out.tolist() == [math.inf, 0.0, 1.0, 1.5]


def test_percentile_ci_keeps_infinite_ends() -> None:
    samples = np.array([1.0] * 10 + [np.inf] * 90)
    assert percentile_ci(samples) == (1.0, math.inf)
    lo, hi = percentile_ci(np.arange(1.0, 101.0))
    assert lo in (2.0, 3.0) and hi in (98.0, 99.0)  # sample values: no interpolation
