"""The grid-table format avatune-grid/2: per-seed values, old tables, diverged seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studies.separability import objective
from studies.table import FORMAT, GridTable

AXES = {"task": "t", "optimizer": "adam", "alphas": [0.1, 1.0], "epsilons": [1e-8, 1e-4, 1.0]}


def _seeds() -> np.ndarray:
    return np.arange(18, dtype=float).reshape(3, 2, 3) + 30.0


def test_v2_round_trip(tmp_path) -> None:
    table = GridTable.from_seeds(
        error_seeds=_seeds(), test_error_seeds=_seeds() + 1, chance=90.0, **AXES
    )
    path = tmp_path / "t.json"
    table.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT == "avatune-grid/2" and data["seeds"] == 3
    assert np.asarray(data["error_seeds"]).shape == (3, 2, 3)
    again = GridTable.load(path)
    assert again == table
    np.testing.assert_allclose(again.error, _seeds().mean(axis=0))
    np.testing.assert_allclose(objective(again), _seeds().mean(axis=0))


def test_a_version_1_table_loads_as_one_seed() -> None:
    old = {**AXES, "error": [[30, 31, 32], [33, 34, 35]], "diverged": [[False] * 3, [True] * 3]}
    table = GridTable.model_validate({**old, "chance": 90.0})
    assert table.seeds == 1 and table.error_seeds is None
    assert table.seed_errors().shape == (1, 2, 3)
    assert objective(table).tolist() == [[30, 31, 32], [90, 90, 90]]


def test_one_diverged_seed_leaves_the_other_seeds_values() -> None:
    seeds = _seeds()
    diverged = np.zeros(seeds.shape, dtype=bool)
    diverged[1, 0, 2] = True
    seeds[1, 0, 2] = 1e6  # whatever a diverged run reported
    table = GridTable.from_seeds(error_seeds=seeds, diverged_seeds=diverged, chance=90.0, **AXES)
    per_seed = table.seed_errors()
    assert per_seed[1, 0, 2] == 90.0
    assert per_seed[0, 0, 2] == seeds[0, 0, 2] and per_seed[2, 0, 2] == seeds[2, 0, 2]
    assert table.error[0][2] == pytest.approx((seeds[0, 0, 2] + 90.0 + seeds[2, 0, 2]) / 3)
    assert table.diverged[0][2] and not table.diverged[0][1]
    assert table.error[1][1] == pytest.approx(seeds[:, 1, 1].mean())


def test_inconsistent_seed_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="2×3"):
        GridTable.from_seeds(error_seeds=np.zeros((2, 3, 3)), **AXES)
    good = GridTable.from_seeds(error_seeds=_seeds(), **AXES).model_dump()
    good["diverged_seeds"] = good["diverged_seeds"][:2]
    with pytest.raises(ValueError, match="3 seeds"):
        GridTable.model_validate(good)
    nan = _seeds()
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        GridTable.from_seeds(error_seeds=nan, **AXES)
