"""Acceptance: median tuning cost orders the tuners as separability predicts."""

from __future__ import annotations

import pytest

from studies.replay import ReplayResult, replay_tables
from tests.studies.helpers import as_table, separable, valley

SEEDS = 60


@pytest.fixture(scope="module")
def replay() -> ReplayResult:
    tables = [as_table(separable(), "separable"), as_table(valley(), "valley")]
    return replay_tables(tables, ("random", "gld", "cgld"), SEEDS, 0.5, processes=2)


def test_separable_table_orders_cgld_gld_random(replay: ReplayResult) -> None:
    costs = {t: r.median for t, r in replay.table("separable").tuners.items()}
    print("separable medians", costs)
    assert costs["cgld"] < costs["gld"] < costs["random"]


def test_diagonal_valley_makes_cgld_far_worse_than_gld(replay: ReplayResult) -> None:
    costs = {t: r.median for t, r in replay.table("valley").tuners.items()}
    print("valley medians", costs)
    assert costs["cgld"] > 2 * costs["gld"]


def test_no_run_is_censored_on_the_synthetic_tables(replay: ReplayResult) -> None:
    assert all(r.n_censored == 0 for t in replay.tables for r in t.tuners.values())
