"""Replay output: schema, δ levels, censoring, processes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studies.replay import ReplayResult, replay_table, replay_tables
from studies.tuners import TUNERS
from studies.tuners.tabular import run_tabular
from tests.studies.helpers import as_table, band, separable


@pytest.fixture(scope="module")
def small() -> ReplayResult:
    tables = [as_table(band(), "adam"), as_table(separable(), "avagrad")]
    return replay_tables(tables, TUNERS, 4, 0.5, processes=2, extra_deltas=[2.0])


def test_json_schema(small: ReplayResult, tmp_path) -> None:
    path = tmp_path / "replay.json"
    small.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "avatune-replay/1"
    assert data["delta"] == 0.5 and data["deltas"] == [0.5, 2.0] and data["seeds"] == 4
    assert [t["name"] for t in data["tables"]] == ["adam", "avagrad"]
    for table in data["tables"]:
        assert set(table) >= {"name", "task", "optimizer", "shape", "f_star", "tuners"}
        assert list(table["tuners"]) == list(TUNERS)
        for runs in table["tuners"].values():
            assert set(runs) >= {
                "costs",
                "censored",
                "median",
                "q1",
                "q3",
                "mean",
                "n_censored",
                "restarts",
                "asks",
                "traces",
                "by_delta",
            }
            assert len(runs["costs"]) == len(runs["traces"]) == 4
            assert runs["median"] == float(np.median(runs["costs"]))
            assert set(runs["by_delta"]) == {"2.0"}
    assert ReplayResult.load(path) == small


def test_larger_delta_never_costs_more(small: ReplayResult) -> None:
    for table in small.tables:
        for runs in table.tuners.values():
            assert all(b <= a for a, b in zip(runs.costs, runs.at(2.0).costs, strict=True))
            assert all(trace[-1] <= 0.5 for trace in runs.traces)


def test_processes_do_not_change_results() -> None:
    table = as_table(separable(), "avagrad")
    one = replay_table(table, ("random", "gld", "cgld"), 6, 0.5, processes=1)
    two = replay_table(table, ("random", "gld", "cgld"), 6, 0.5, processes=2)
    assert one.model_dump() == two.model_dump()


def test_a_stalled_tuner_is_censored() -> None:
    values = separable()[:4, :4]
    run = run_tabular("cmaes", values, seed=0, target=-1.0, stall_asks=30)  # unreachable
    assert run.censored and run.cost <= values.size and run.asks < 20 * values.size
    capped = run_tabular("random", separable(), seed=0, target=-1.0, max_asks=50)
    assert capped.censored and capped.asks == 50


def test_unknown_tuner_is_refused() -> None:
    with pytest.raises(ValueError, match="known tuners"):
        replay_tables([as_table(separable(), "x")], ["bogus"], 2)
