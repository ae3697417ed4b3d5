"""Two line searches on (α, ε) tables: regret, end point and evaluation cost."""

from __future__ import annotations

import numpy as np
import pytest

from studies.line_search import line_search_regrets, two_line_search


def test_additive_table_has_zero_regret_from_every_start() -> None:
    alpha_part = np.array([3.0, 1.0, 0.5, 2.0, 4.0, 6.0])
    eps_part = np.array([2.0, 0.0, 1.0, 5.0, 0.3])
    table = alpha_part[:, None] + eps_part[None, :]  # min 0.5 at (2, 1)
    for start in range(5):
        search = two_line_search(table, start)
        assert (search.alpha_index, search.eps_index) == (2, 1)
        assert search.regret == 0.0
    np.testing.assert_array_equal(line_search_regrets(table), np.zeros(5))


def test_diagonal_table_traps_the_search_on_its_start() -> None:
    i, j = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    table = np.abs(i - j).astype(float)  # 0 along the diagonal, depends on i − j only
    table[3, 3] = -3.0  # the one best diagonal cell, off centre
    # from ε₀ = j: column j is best at α = j (0, or -3 for j = 3), row j is best at ε = j again,
    # so the search stops at (j, j) with regret 0 − (−3) = 3, except from j = 3
    expected = np.array([3.0, 3.0, 3.0, 0.0, 3.0])
    np.testing.assert_array_equal(line_search_regrets(table), expected)
    np.testing.assert_array_equal(line_search_regrets(table, rounds=4), expected)
    search = two_line_search(table, 1)
    assert (search.alpha_index, search.eps_index, search.found) == (1, 1, 0.0)


def test_cost_counts_distinct_cells() -> None:
    table = np.array(
        [
            [5.0, 6.0, 7.0],
            [1.0, 3.0, 0.0],
            [4.0, -2.0, -1.0],
        ]
    )
    # round 1: column 0 → α 1 (value 1), row 1 → ε 2 (value 0): 3 + 3 − 1 = 5 cells
    first = two_line_search(table, 0)
    assert (first.alpha_index, first.eps_index, first.found, first.regret) == (1, 2, 0.0, 2.0)
    assert first.cost == 5
    # round 2: column 2 adds (0,2), (2,2) → α 2; row 2 adds (2,1) → ε 1 (value −2): 8 cells
    second = two_line_search(table, 0, rounds=2)
    assert (second.alpha_index, second.eps_index, second.regret) == (2, 1, 0.0)
    assert second.cost == 8
    # round 3: column 1 adds (0,1) only, and the search stays at (2, 1)
    assert two_line_search(table, 0, rounds=3).cost == 9


def test_one_round_costs_a_plus_e_minus_one() -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(7, 4))
    assert {two_line_search(table, start).cost for start in range(4)} == {7 + 4 - 1}


def test_ties_go_to_the_lowest_index() -> None:
    search = two_line_search(np.zeros((3, 4)), 2)
    assert (search.alpha_index, search.eps_index, search.cost) == (0, 0, 6)


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_vectorised_equals_scalar_calls(rounds: int) -> None:
    rng = np.random.default_rng(rounds)
    tables = np.concatenate(
        [rng.normal(size=(20, 6, 5)), rng.integers(0, 4, (20, 6, 5)).astype(float)]
    ).reshape(2, 20, 6, 5)
    regrets = line_search_regrets(tables, rounds=rounds)
    assert regrets.shape == (2, 20, 5)
    for index in np.ndindex(2, 20):
        expected = [two_line_search(tables[index], s, rounds).regret for s in range(5)]
        np.testing.assert_array_equal(regrets[index], expected)


def test_a_second_round_is_never_worse() -> None:
    rng = np.random.default_rng(4)
    tables = rng.normal(size=(500, 8, 7))
    one, two = line_search_regrets(tables), line_search_regrets(tables, rounds=2)
    assert np.all(two <= one)
    assert np.any(two < one)
    assert np.all(one >= 0.0)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="rounds"):
        two_line_search(np.zeros((2, 2)), 0, rounds=0)
    with pytest.raises(ValueError, match="start"):
        two_line_search(np.zeros((2, 2)), 2)
