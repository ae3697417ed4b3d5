"""Kaplan–Meier curve, median and success rate of censored tuning costs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from studies.survival import kaplan_meier, km_median, km_medians, success_rate


def test_hand_computed_curve_with_ties_and_censoring() -> None:
    costs = np.array([1, 2, 2, 2, 3, 4, 4, 5], dtype=float)
    censored = np.array([0, 0, 0, 1, 1, 0, 1, 0], dtype=bool)
    # t=1: 8 at risk, 1 event              S = 7/8
    # t=2: 7 at risk (the run censored at 2 still counts), 2 events
    #                                      S = 7/8 · 5/7 = 5/8   (censoring first: 7/12)
    # t=3: censored only, no step; 3 left at risk
    # t=4: 3 at risk, 1 event, 1 censored  S = 5/8 · 2/3 = 5/12
    # t=5: 1 at risk, 1 event              S = 0
    curve = kaplan_meier(costs, censored)
    np.testing.assert_array_equal(curve.times, [1.0, 2.0, 4.0, 5.0])
    np.testing.assert_allclose(curve.survival, [7 / 8, 5 / 8, 5 / 12, 0.0], rtol=1e-12)
    assert km_median(costs, censored) == 4.0
    assert success_rate(costs, censored) == pytest.approx(5 / 8)


def test_without_censoring_the_median_is_the_lower_median() -> None:
    rng = np.random.default_rng(1)
    for n_runs in range(1, 40):
        costs = rng.integers(1, 12, n_runs).astype(float)  # ties included
        censored = np.zeros(n_runs, dtype=bool)
        lower = np.sort(costs)[math.ceil(n_runs / 2) - 1]  # smallest t with ECDF(t) >= 0.5
        assert km_median(costs, censored) == lower
        assert km_medians(costs[None], censored[None])[0] == lower
    assert km_median([1.0, 2.0, 3.0, 4.0], [False] * 4) == 2.0


def test_all_censored_is_infinite_and_no_runs_is_nan() -> None:
    assert km_median([3.0, 5.0], [True, True]) == math.inf
    assert km_medians(np.array([[3.0, 5.0]]), np.ones((1, 2), dtype=bool))[0] == math.inf
    assert math.isnan(km_median([], []))
    assert math.isnan(success_rate([], []))
    assert success_rate([3.0, 5.0], [True, True]) == 0.0


def test_median_censored_when_too_few_succeed() -> None:
    # S = 3/4 after t=1, then only censorings: the median is beyond the data
    assert km_median([1.0, 2.0, 3.0, 4.0], [False, True, True, True]) == math.inf


def test_vectorised_medians_equal_row_by_row() -> None:
    rng = np.random.default_rng(2)
    for n_runs in (1, 3, 7, 30, 100):
        costs = rng.integers(1, 15, (200, n_runs)).astype(float)
        censored = rng.random((200, n_runs)) < 0.4
        expected = [km_median(c, s) for c, s in zip(costs, censored, strict=True)]
        np.testing.assert_array_equal(km_medians(costs, censored), expected)


def test_curve_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        costs = rng.integers(1, 25, 60).astype(float)
        censored = rng.random(60) < 0.35
        ours = kaplan_meier(costs, censored)
        theirs = SurvfuncRight(costs, (~censored).astype(int))
        np.testing.assert_array_equal(ours.times, theirs.surv_times)
        np.testing.assert_allclose(ours.survival, theirs.surv_prob, rtol=1e-12, atol=1e-15)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        kaplan_meier([1.0, 2.0], [False])
