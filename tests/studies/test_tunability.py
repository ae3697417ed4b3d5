"""Expected best error after k random-search trials (closed form against Monte Carlo)."""

from __future__ import annotations

import numpy as np
import pytest

from studies.tunability import DEFAULT_KS, expected_best, tunability_curve


def test_matches_brute_force_random_search() -> None:
    rng = np.random.default_rng(0)
    grid = rng.gamma(2.0, 10.0, size=(6, 5))
    cells = grid.ravel()
    n_draws = 200_000
    ks = (1, 3, 8, 20)
    closed = expected_best(cells, ks)
    for k, expected in zip(ks, closed, strict=True):
        best = cells[rng.integers(0, cells.size, (n_draws, k))].min(axis=1)
        standard_error = best.std() / np.sqrt(n_draws)
        assert abs(best.mean() - expected) < 4.5 * standard_error


def test_hand_computed_two_cells() -> None:
    # min of k draws from {1, 3} is 3 only if every draw is 3: E = 1 + 2 · 2^-k
    np.testing.assert_allclose(expected_best([3.0, 1.0], [1, 2, 3]), [2.0, 1.5, 1.25])


def test_one_trial_is_the_mean_and_many_reach_the_minimum() -> None:
    rng = np.random.default_rng(1)
    cells = rng.normal(size=30)
    one, many = expected_best(cells, [1, 5000])
    assert one == pytest.approx(cells.mean(), rel=1e-12)
    assert many == pytest.approx(cells.min(), abs=1e-12)


def test_non_increasing_in_k() -> None:
    rng = np.random.default_rng(2)
    curve = expected_best(rng.normal(size=(50, 21 * 21)), range(1, 65))
    assert np.all(np.diff(curve, axis=-1) <= 1e-12)
    assert np.all(np.diff(curve, axis=-1)[:, :10] < 0)  # strictly while the minimum is far


def test_vectorised_rows_equal_single_calls() -> None:
    rng = np.random.default_rng(3)
    tables = rng.normal(size=(4, 7, 40))
    batched = expected_best(tables, DEFAULT_KS)
    assert batched.shape == (4, 7, len(DEFAULT_KS))
    for index in np.ndindex(4, 7):
        np.testing.assert_allclose(batched[index], expected_best(tables[index], DEFAULT_KS))


def test_curve_of_a_grid() -> None:
    grid = np.array([[4.0, 2.0], [8.0, 6.0]])
    curve = tunability_curve(grid)
    assert curve.ks == DEFAULT_KS
    assert curve.expected[0] == pytest.approx(5.0)
    assert curve.expected == tuple(expected_best(grid.ravel(), DEFAULT_KS))


def test_bad_budgets_raise() -> None:
    with pytest.raises(ValueError, match="ks"):
        expected_best([1.0, 2.0], [0])
    with pytest.raises(ValueError, match="cell"):
        expected_best(np.zeros((3, 0)), [1])
