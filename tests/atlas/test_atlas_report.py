"""The atlas's own statistics: subgrids, α lines, the ranking and cached sections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from studies.atlas_report import alpha_line, cached_report, ranking, subgrid
from studies.atlas_write import grid_seconds
from studies.table import GridTable


def _table(seeds: np.ndarray, alphas: list[float], epsilons: list[float]) -> GridTable:
    return GridTable.from_seeds(
        error_seeds=seeds.tolist(),
        chance=90.0,
        task="mnist1d-mlp",
        optimizer="sgd" if len(epsilons) == 1 else "adam",
        alphas=alphas,
        epsilons=epsilons,
    )


def test_subgrid_keeps_every_seed_of_the_chosen_cells() -> None:
    rng = np.random.default_rng(0)
    seeds = rng.uniform(10, 80, size=(3, 4, 5))
    table = _table(seeds, [1e-3, 1e-2, 1e-1, 1.0], [1e-8, 1e-6, 1e-4, 1e-2, 1.0])
    cut = subgrid(table, [1e-3, 1e-1], [1e-8, 1e-4, 1.0])
    assert cut.alphas == [1e-3, 1e-1] and cut.epsilons == [1e-8, 1e-4, 1.0]
    np.testing.assert_array_equal(cut.seed_errors(), seeds[:, [0, 2]][:, :, [0, 2, 4]])
    np.testing.assert_allclose(cut.error, seeds[:, [0, 2]][:, :, [0, 2, 4]].mean(0))


def test_subgrid_refuses_values_the_table_lacks() -> None:
    table = _table(np.full((1, 2, 2), 50.0), [1e-3, 1e-2], [1e-8, 1e-4])
    with pytest.raises(ValueError):
        subgrid(table, [5e-3], [1e-8])


def test_alpha_line_best_and_tunability_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    seeds = rng.uniform(20, 60, size=(3, 6, 1))
    alphas = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    line = alpha_line(_table(seeds, alphas, [1e-8]))
    mean = seeds.mean(0)[:, 0]
    assert line.f_star.value == pytest.approx(mean.min())
    assert line.best_alpha == alphas[int(np.argmin(mean))]
    assert line.cost == 6
    draws = rng.choice(mean, size=(200_000, 8)).min(1)  # k = 8 draws with replacement
    assert line.tunability[8].value == pytest.approx(draws.mean(), abs=0.05)
    lo, hi = line.f_star.ci
    assert lo <= line.f_star.value + 1e-9 and hi >= lo


def _cost(median: float | None, bound: float, censored: bool = False) -> dict:
    return {"median": median, "median_bound": bound, "censored_median": censored, "ci": [1, 2]}


def test_ranking_puts_censored_medians_last_in_bound_order() -> None:
    class Row:
        def __init__(self, name: str, cost: dict) -> None:
            self.optimizer, self.coarse_costs = name, {"cgld": cost}

    rows = [
        Row("a", _cost(None, 40, censored=True)),
        Row("b", _cost(12, 12)),
        Row("c", _cost(None, 30, censored=True)),
        Row("d", _cost(7, 7)),
    ]
    ranked = ranking(rows)  # type: ignore[arg-type]
    assert [r["optimizer"] for r in ranked] == ["d", "b", "c", "a"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]
    assert ranked[2]["censored"] and not ranked[0]["censored"]


def test_cached_report_reruns_only_when_tables_or_settings_change(tmp_path: Path) -> None:
    calls = []

    def run(tables: list[GridTable], out: Path) -> dict:
        calls.append(len(tables))
        out.mkdir(parents=True, exist_ok=True)
        metrics = {"n": len(calls)}
        (out / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    table = _table(np.full((1, 2, 2), 50.0), [1e-3, 1e-2], [1e-8, 1e-4])
    other = _table(np.full((1, 2, 2), 40.0), [1e-3, 1e-2], [1e-8, 1e-4])
    assert cached_report([table], tmp_path, {"seeds": 3}, run) == {"n": 1}
    assert cached_report([table], tmp_path, {"seeds": 3}, run) == {"n": 1}
    assert cached_report([other], tmp_path, {"seeds": 3}, run) == {"n": 2}
    assert cached_report([other], tmp_path, {"seeds": 4}, run) == {"n": 3}
    assert len(calls) == 3


def test_grid_seconds_split_the_wall_time_in_finishing_order() -> None:
    grids = [
        {"optimizer": "b", "last_finished": "2026-12-02T10:00:50+00:00"},
        {"optimizer": "a", "last_finished": "2026-12-02T10:00:30+00:00"},
        {"optimizer": "c", "last_finished": "2026-12-02T10:00:45"},  # naive: UTC
        {"optimizer": "never", "last_finished": None},
    ]
    timed = grid_seconds(grids, "2026-12-02T10:00:00+00:00")
    assert [(g["optimizer"], g["seconds"]) for g in timed] == [("a", 30), ("c", 15), ("b", 5)]
