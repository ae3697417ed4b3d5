"""`avatune grid`: a whole grid without the service, written as a GridTable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from studies.cli import build_app
from studies.grids import grid_values
from studies.table import FORMAT, GridTable
from workers.grid import grid_epsilons, run_grid
from workers.trainer import TrialConfig, train

runner = CliRunner()


def test_grid_command_writes_a_valid_table(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "table.json"
    result = runner.invoke(
        build_app(),
        [
            "grid",
            "--task",
            "mnist1d-mlp",
            "--optimizer",
            "avagrad",
            "--grid",
            "coarse",
            "--steps",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = GridTable.load(out)
    assert (table.task, table.optimizer, table.shape) == ("mnist1d-mlp", "avagrad", (11, 11))
    assert table.chance == 90.0
    assert table.fidelity["steps"] == 3 and table.fidelity["seeds"] == 1
    assert table.format == FORMAT and table.seeds == 1 and table.error_seeds == [table.error]
    assert table.test_error is not None and table.diverged is not None
    assert "best α" in result.output and str(out) in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizer", "adamm"], "unknown optimizer"),
        (["--optimizer", "adam", "--task", "mnist2d"], "unknown task"),
        (["--optimizer", "adam", "--grid", "fine"], "unknown grid"),
        (["--optimizer", "adam", "--device", "tpu"], "device"),
    ],
)
def test_grid_command_rejects_bad_names(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(build_app(), ["grid", *args, "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "t.json").exists()


def test_weight_decay_is_trained_with_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "decayed.json"
    args = ["grid", "--optimizer", "avagrad", "--grid", "coarse", "--steps", "30"]
    result = runner.invoke(build_app(), [*args, "--weight-decay", "0.05", "--out", str(out)])
    assert result.exit_code == 0, result.output
    decayed = GridTable.load(out)
    assert decayed.settings == {"weight_decay": 0.05}
    bare = run_grid("mnist1d-mlp", "avagrad", "coarse", steps=30)
    assert bare.settings == {}
    assert decayed.error != bare.error  # the decay reached the optimizer
    refused = runner.invoke(build_app(), [*args, "--weight-decay", "-1", "--out", str(out)])
    assert refused.exit_code == 2 and "weight-decay" in refused.output


def test_seeds_are_averaged_per_cell() -> None:
    table = run_grid("eq11", "adam", "coarse", steps=50, seeds=2)
    assert table.fidelity["seeds"] == 2 and table.shape == (11, 11)
    assert table.chance == pytest.approx(500 / 999)
    assert table.seeds == 2 and np.asarray(table.error_seeds).shape == (2, 11, 11)
    np.testing.assert_allclose(table.error, np.mean(table.error_seeds, axis=0))


def test_grid_with_seeds_round_trips_as_version_2(tmp_path: Path) -> None:
    """`avatune grid --seeds 2`: each seed's values kept; each one is that seed's training."""
    out = tmp_path / "seeds.json"
    args = ["grid", "--optimizer", "adam", "--grid", "coarse", "--steps", "3", "--seeds", "2"]
    result = runner.invoke(build_app(), [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    raw = json.loads(out.read_text())
    assert raw["format"] == FORMAT and raw["seeds"] == 2
    table = GridTable.load(out)
    assert table.seeds == 2 and table.fidelity["seeds"] == 2
    for name in ("error_seeds", "test_error_seeds", "diverged_seeds"):
        assert np.asarray(getattr(table, name)).shape == (2, 11, 11), name
    np.testing.assert_allclose(table.error, np.mean(table.error_seeds, axis=0))
    assert table.diverged == np.any(table.diverged_seeds, axis=0).tolist()
    assert table.error_seeds[0] != table.error_seeds[1]  # two trainings, not one twice
    alphas, epsilons = grid_values("coarse")
    i, j = 4, 7
    again = train("mnist1d-mlp", "adam", [TrialConfig(alphas[i], epsilons[j], 1)], steps=3)[0]
    assert table.error_seeds[1][i][j] == pytest.approx(min(again.objective, 90.0))
    np.testing.assert_array_equal(table.seed_errors(), np.asarray(table.error_seeds))


def test_adabelief_epsilons_are_shifted() -> None:
    assert grid_epsilons("adabelief", [1e-8, 1.0]) == [1e-16, 1e-8]
    assert grid_epsilons("adam", [1e-8, 1.0]) == [1e-8, 1.0]


def test_task_options_reach_the_grid_and_bad_ones_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "lstm.json"
    args = ["grid", "--task", "charlm-lstm", "--optimizer", "adam", "--grid", "coarse"]
    tiny = ["--steps", "2", "--batch-size", "2", "--out", str(out)]
    options = ["embedding=4", "hidden=4", "seq_len=4", "eval_windows=2"]
    flags = [x for option in options for x in ("--task-config", option)]
    result = runner.invoke(build_app(), [*args, *tiny, *flags])
    assert result.exit_code == 0, result.output
    table = GridTable.load(out)
    assert table.fidelity["task_config"] == {
        "embedding": 4,
        "hidden": 4,
        "seq_len": 4,
        "eval_windows": 2,
    }
    bad = runner.invoke(build_app(), [*args, *tiny, "--task-config", "hiden=4"])
    assert bad.exit_code == 2 and "did you mean 'hidden'" in bad.output
    malformed = runner.invoke(build_app(), [*args, *tiny, "--task-config", "hidden"])
    assert malformed.exit_code == 2 and "KEY=VALUE" in malformed.output
