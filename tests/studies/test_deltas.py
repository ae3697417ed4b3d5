"""Task-aware δ: absolute (pp of error) or relative (% of f*, bits per character), from the
task's declaration through specs, replays, the bootstrap's resamples and the report."""

from __future__ import annotations

import numpy as np
import pytest

from studies.bootstrap import BootstrapSettings, _run_replicates, bootstrap_replays
from studies.deltas import delta_gap, delta_target, delta_text
from studies.grids import grid_values
from studies.objectives import OBJECTIVES, delta_kind_of, objective_of
from studies.replay import ReplayResult, replay_tables
from studies.report import build_report, compute_metrics
from studies.specs import ExperimentSpec, ReplaySettings
from studies.table import GridTable

ERROR_TASKS = ("mnist1d-mlp", "mnist1d-cnn", "cifar10-wrn", "mnist1d-resnet")


def test_absolute_delta_is_itself_relative_is_a_share_of_f_star() -> None:
    assert delta_gap(0.5, 35.0) == 0.5
    assert delta_target(0.5, 35.0, "absolute") == 35.5
    assert delta_gap(1.0, 1.6, "relative") == pytest.approx(0.016)
    assert delta_target(2.0, 1.5, "relative") == pytest.approx(1.53)
    assert delta_gap(10.0, -2.0, "relative") == pytest.approx(0.2)  # above f*, never below
    with pytest.raises(ValueError, match="unknown δ kind"):
        delta_gap(1.0, 1.0, "percent")  # type: ignore[arg-type]


def test_per_resample_f_star_gives_per_resample_targets() -> None:
    f_stars = np.array([1.5, 1.6, 2.0])
    np.testing.assert_allclose(delta_target(1.0, f_stars, "relative"), f_stars * 1.01)
    np.testing.assert_allclose(delta_target(0.5, f_stars, "absolute"), f_stars + 0.5)


def test_tasks_declare_their_objective_and_deltas() -> None:
    for task in ERROR_TASKS:
        goal = objective_of(task)
        assert (goal.delta_kind, goal.deltas, goal.delta_unit) == ("absolute", (0.5, 1.0), "pp")
    charlm = OBJECTIVES["charlm-lstm"]
    assert charlm.name == "validation bits per character"
    assert (charlm.delta_kind, charlm.deltas, charlm.delta_unit) == (
        "relative",
        (1.0, 2.0),
        "% of f*",
    )
    assert OBJECTIVES["eq11"].delta_kind == "absolute"
    plugin = objective_of("someone's plugin")
    assert (plugin.delta_kind, plugin.deltas) == ("absolute", (0.5, 1.0))
    assert delta_text(0.5, "pp") == "δ = 0.5 pp" and delta_text(1.0, "% of f*") == "δ = 1 % of f*"
    assert delta_kind_of(["mnist1d-mlp", "mnist1d-cnn"]) == "absolute"
    with pytest.raises(ValueError, match="read δ differently"):
        delta_kind_of(["mnist1d-mlp", "charlm-lstm"])


def test_spec_deltas_default_to_the_tasks() -> None:
    charlm = ExperimentSpec(name="lm", task="charlm-lstm", optimizers=["adam"])
    assert charlm.replay.deltas == [1.0, 2.0] and charlm.delta_kind == "relative"
    mnist = ExperimentSpec(name="m", task="mnist1d-mlp", optimizers=["adam"])
    assert mnist.replay.deltas == [0.5, 1.0] and mnist.delta_kind == "absolute"
    explicit = ExperimentSpec(
        name="lm", task="charlm-lstm", optimizers=["adam"], replay={"deltas": [0.5]}
    )
    assert explicit.replay.deltas == [0.5] and explicit.delta_kind == "relative"
    shared = ReplaySettings()
    assert shared.deltas is None and shared.deltas_for("charlm-lstm") == [1.0, 2.0]
    ExperimentSpec(name="lm", task="charlm-lstm", optimizers=["adam"], replay=shared)
    assert shared.deltas is None  # resolved on a copy
    for bad in ([1.0, 1.0], [0.0], [150.0], []):
        with pytest.raises(ValueError):
            ReplaySettings(deltas=bad)


def _ranked(scale: float) -> np.ndarray:
    """An 11×11 table: f* = `scale`, the k-th best cell at scale·(1 + k/100)."""
    order = np.random.default_rng(3).permutation(121).reshape(11, 11)
    return scale * (1 + order / 100)


def test_bootstrap_targets_follow_each_resamples_f_star() -> None:
    tables = np.stack([_ranked(1.0), _ranked(10.0)])  # two resamples, f* 1 and 10
    seeds = [7, 7]  # the same tuner seed on both
    (relative,), _ = _run_replicates("random", tables, seeds, 1, [5.0], "relative")
    # 5 % of each resample's own f*: the same six cells qualify, the same run succeeds alike
    assert relative[0] == relative[1]
    (absolute,), _ = _run_replicates("random", tables, seeds, 1, [0.05], "absolute")
    assert absolute[0] == relative[0]  # 0.05 above f* = 1 is 5 % of it
    assert absolute[1] > absolute[0]  # above f* = 10 only the best cell is within 0.05


def _bpc_table(values: np.ndarray, optimizer: str, seed: int) -> GridTable:
    alphas, epsilons = grid_values("coarse")
    noisy = values[None] + np.random.default_rng(seed).normal(0, 0.01, (2, 11, 11))
    return GridTable.from_seeds(
        task="charlm-lstm",
        optimizer=optimizer,
        alphas=alphas,
        epsilons=epsilons,
        error_seeds=np.minimum(noisy, 6.0),
        chance=6.0,
    )


@pytest.fixture(scope="module")
def bpc_tables() -> list[GridTable]:
    i, j = np.meshgrid(np.arange(11.0), np.arange(11.0), indexing="ij")
    bowl = 1.5 + 0.02 * ((i - 6) ** 2 + (j - 3) ** 2)
    coupled = np.minimum(6.0, 1.6 + 0.05 * (i - j) ** 2 + 0.01 * i)
    return [_bpc_table(coupled, "adam", 0), _bpc_table(bowl, "avagrad", 1)]


def test_a_bpc_report_reads_delta_as_a_share_of_f_star(bpc_tables, tmp_path) -> None:
    metrics = build_report(
        bpc_tables,
        out_dir=tmp_path,
        tuners=["random", "cgld", "gld"],
        seeds=6,
        processes=1,
        bootstrap=BootstrapSettings(tables=3, replays=2),
    )
    assert metrics["deltas"] == [1.0, 2.0] and metrics["delta_kind"] == "relative"
    assert metrics["delta_unit"] == "% of f*"
    assert metrics["objective"]["name"] == "validation bits per character"
    for grid in metrics["tables"].values():
        f_star = grid["f_star"]
        assert grid["targets"] == {
            "1.0": pytest.approx(f_star * 1.01),
            "2.0": pytest.approx(f_star * 1.02),
        }
        assert grid["stats"]["noise"]["delta_gap"] == pytest.approx(f_star / 100)
    replay = ReplayResult.load(tmp_path / "replay.json")
    assert replay.delta_kind == "relative"
    for table in replay.tables:
        gap = table.f_star / 100
        for tuner in table.tuners.values():
            for cost, censored, trace in zip(
                tuner.costs, tuner.censored, tuner.traces, strict=True
            ):
                hit = next((n for n, s in enumerate(trace, 1) if s <= gap + 1e-6), None)
                assert censored == (hit is None) and (censored or cost == hit)
    text = (tmp_path / "report.md").read_text()
    assert "## Tuning cost to δ = 1 % of f* (Figure 2)" in text
    assert "## Tuning cost to δ = 2 % of f* (Figure 2)" in text
    assert "best validation bits per character (bpc) [95% CI]" in text
    assert "Targets (f* + δ/100·f*, bpc): adam " in text
    assert "trials to δ = 1 % of f*" in metrics["verdict"]
    assert " pp" not in text


def test_bootstrap_and_replay_must_read_delta_alike(bpc_tables) -> None:
    replay = replay_tables(bpc_tables, ["random"], 2, 1.0, processes=1)
    assert replay.delta_kind == "relative"
    boot = bootstrap_replays(
        bpc_tables,
        ["adam", "avagrad"],
        ["random"],
        [1.0],
        BootstrapSettings(tables=2, replays=1),
        1,
        delta_kind="absolute",
    )
    with pytest.raises(ValueError, match="reads δ as absolute"):
        compute_metrics(bpc_tables, replay, boot, grid_resamples=5)
