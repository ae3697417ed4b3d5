"""Separability metrics and cost summaries."""

from __future__ import annotations

import numpy as np
import pytest

from studies.grids import grid_values
from studies.separability import (
    best_alpha_drift,
    interaction_fraction,
    objective,
    summarize,
)
from studies.table import GridTable
from tests.studies.helpers import additive, as_table, band, separable

ALPHAS, EPSILONS = grid_values("paper")


def test_additive_table_has_no_interaction_and_no_drift() -> None:
    assert interaction_fraction(additive()) == pytest.approx(0.0, abs=1e-12)
    assert interaction_fraction(separable()) == pytest.approx(0.0, abs=1e-12)
    assert best_alpha_drift(additive(), ALPHAS) == 0.0


def test_diagonal_band_has_high_interaction_and_drift() -> None:
    assert interaction_fraction(band()) > 0.5
    assert best_alpha_drift(band(), ALPHAS) > 9.0  # the best α follows ε over 10 decades


def test_constant_table_is_separable() -> None:
    assert interaction_fraction(np.full((4, 3), 7.0)) == 0.0


def test_drift_counts_decades() -> None:
    values = np.ones((21, 21))
    values[7, :10] = 0.0  # α = 1e-3 for the first ten ε
    values[11, 10:] = 0.0  # α = 1e-1 for the rest
    assert best_alpha_drift(values, ALPHAS) == pytest.approx(2.0)


def test_objective_puts_diverged_runs_at_chance() -> None:
    table = GridTable(
        task="t",
        optimizer="o",
        alphas=[1.0, 2.0],
        epsilons=[1.0],
        error=[[5.0], [95.0]],
        diverged=[[True], [False]],
        chance=90.0,
    )
    assert objective(table).tolist() == [[90.0], [90.0]]
    assert objective(as_table(band(), "x")).max() == 90.0


def test_summary() -> None:
    assert summarize([1, 2, 3, 4, 5]) == {"median": 3.0, "q1": 2.0, "q3": 4.0, "mean": 3.0}
