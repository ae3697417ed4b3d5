"""Figures (plotly dicts + PNG), the report, and the `replay` / `report` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from studies import figures
from studies.analysis_cli import register
from studies.bootstrap import BootstrapReplay, BootstrapSettings, bootstrap_replays
from studies.replay import ReplayResult, replay_tables
from studies.report import build_report, compute_metrics
from studies.table import GridTable, optimizer_label
from tests.studies.helpers import as_table, band, separable

TUNERS = ("random", "gld", "cgld")
SMALL = BootstrapSettings(tables=6, replays=3)


def _replicated(values: np.ndarray, optimizer: str, seed: int, chance: float) -> GridTable:
    """Three noisy seeds of `values` as a v2 table on the paper grid (an error-% task: δ in pp)."""
    base = as_table(values, optimizer, chance=chance).model_copy(update={"task": "mnist1d-mlp"})
    noisy = np.minimum(
        np.asarray(values)[None] + np.random.default_rng(seed).normal(0, 0.3, (3, 21, 21)), chance
    )
    fields = base.model_dump(exclude={"error", "test_error", "diverged", "seeds", "format"})
    fields.pop("error_seeds"), fields.pop("diverged_seeds"), fields.pop("test_error_seeds")
    fields.pop("chance")
    return GridTable.from_seeds(error_seeds=noisy, chance=chance, **fields)


@pytest.fixture(scope="module")
def tables() -> list:
    return [_replicated(band(), "adam", 0, 90.0), _replicated(separable(), "avagrad", 1, 1e3)]


@pytest.fixture(scope="module")
def replay(tables) -> ReplayResult:
    return replay_tables(tables, TUNERS, 12, 0.5, processes=1, extra_deltas=[1.0])


@pytest.fixture(scope="module")
def boot(tables, replay: ReplayResult) -> BootstrapReplay:
    return bootstrap_replays(tables, ["adam", "avagrad"], TUNERS, replay.deltas, SMALL, 1)


def test_figures_are_valid_json_plotly(tables, replay: ReplayResult) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    made = [
        figures.heatmaps(tables),
        figures.heatmap(tables[0]),
        figures.cost_bars(replay),
        figures.cost_bars(json.loads(replay.model_dump_json()), delta=1.0),
        figures.suboptimality_curves(replay),
        figures.tunability_curves(compute_metrics(tables, replay, grid_resamples=20)),
    ]
    for fig in made:
        assert json.loads(json.dumps(fig)) == fig
        go.Figure(fig)  # raises on anything plotly.js would not understand
    assert len(made[0]["data"]) == 6 and made[0]["layout"]["xaxis2"]["anchor"] == "y2"
    assert [t["name"] for t in made[2]["data"]] == ["adam", "avagrad"]


def test_png_rendering(tables, replay: ReplayResult, tmp_path) -> None:
    for name, fig in {
        "h": figures.heatmaps(tables),
        "b": figures.cost_bars(replay),
        "c": figures.suboptimality_curves(replay),
    }.items():
        path = figures.render_png(fig, tmp_path / f"{name}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_and_verdict(tables, replay: ReplayResult, boot: BootstrapReplay) -> None:
    metrics = compute_metrics(tables, replay, boot)
    assert metrics["reference"] == "avagrad"
    assert metrics["tables"]["avagrad"]["interaction"] < 0.01
    assert metrics["tables"]["adam"]["interaction"] > 0.5
    assert metrics["tables"]["adam"]["seeds"] == 3
    ratio = metrics["ratios"]["adam/avagrad"]["cgld"]
    lo, hi = ratio["ci"]
    assert lo is not None and hi is not None and lo <= hi
    assert set(metrics["costs_by_delta"]) == {"0.5", "1.0"}
    difference = metrics["interaction_difference"]["avagrad-adam"]
    assert difference["ci"][1] < 0 < metrics["tables"]["adam"]["interaction"]
    assert metrics["conclusion"] in {"supported", "inconclusive"}
    assert metrics["decided_by"]["cgld_ratio"] == ratio
    assert f"is {metrics['conclusion']} here" in metrics["verdict"]
    stats = metrics["tables"]["avagrad"]["stats"]
    assert stats["line_search"]["worst"]["value"] < 1.5  # separable: two line searches suffice
    assert stats["anova"]["df_residual"] == 21 * 21 * 2
    json.dumps(metrics, allow_nan=False)


def test_one_seed_per_cell_is_inconclusive(replay: ReplayResult, boot: BootstrapReplay) -> None:
    tables = [as_table(band(), "adam", chance=90.0), as_table(separable(), "avagrad")]
    metrics = compute_metrics(tables, replay, boot)
    assert metrics["conclusion"] == "inconclusive"
    assert "one seed" in metrics["conclusion_reason"]
    assert metrics["tables"]["adam"]["stats"]["anova"] is None


def test_without_a_bootstrap_cost_intervals_are_missing(tables, replay: ReplayResult) -> None:
    metrics = compute_metrics(tables, replay)
    assert metrics["ratios"]["adam/avagrad"]["cgld"]["ci"] == [None, None]
    assert metrics["conclusion"] == "inconclusive"


def test_build_report_writes_files(tables, replay: ReplayResult, boot, tmp_path) -> None:
    metrics = build_report(tables, replay, tmp_path / "out", bootstrap=boot)
    out = tmp_path / "out"
    for name in ["report.md", "metrics.json", *metrics["figures"].values()]:
        assert (out / name).stat().st_size > 0
    text = (out / "report.md").read_text()
    assert "| cgld |" in text and metrics["verdict"] in text
    for section in ("## Noise", "## Two line searches", "## CGLD gain", "## Tunability"):
        assert section in text
    assert f"**Conclusion: {metrics['conclusion']}**" in text and "Rule: " in text
    assert text.count("Noise floor at the optimum (SE of f*, pp): adam ") == 2  # one per δ
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_report_names_each_optimizer_with_its_fixed_settings(
    tables, replay: ReplayResult, boot, tmp_path
) -> None:
    decayed = [t.model_copy(update={"settings": {"weight_decay": 2e-3}}) for t in tables]
    metrics = build_report(decayed, replay, tmp_path / "out", bootstrap=boot)
    assert metrics["tables"]["adam"]["settings"] == {"weight_decay": 2e-3}
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| adam (weight_decay 0.002) | " in text
    assert optimizer_label("sgd", {}) == "sgd"
    both = {"betas": (0.9, 0.99), "weight_decay": 0.1}
    assert optimizer_label("adam", both) == "adam (betas (0.9, 0.99), weight_decay 0.1)"


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_replay_and_report(tables, tmp_path) -> None:
    paths = []
    for table in tables:
        paths.append(tmp_path / f"{table.optimizer}.json")
        table.save(paths[-1])
    runner = CliRunner()
    out = tmp_path / "replay.json"
    result = runner.invoke(
        _cli(),
        [
            "replay",
            *map(str, paths),
            "--tuners",
            "gld,cgld",
            "--seeds",
            "5",
            "--delta",
            "0.5",
            "--delta",
            "1.0",
            "--processes",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = ReplayResult.load(out)
    assert data.seeds == 5 and list(data.tables[0].tuners) == ["gld", "cgld"]
    result = runner.invoke(
        _cli(),
        [
            "report",
            *map(str, paths),
            "--replay",
            str(out),
            "--out",
            str(tmp_path / "rep"),
            "--bootstrap-tables",
            "4",
            "--bootstrap-replays",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.md").exists()


def test_cli_rejects_bad_input(tables, tmp_path) -> None:
    path = tmp_path / "t.json"
    tables[0].save(path)
    runner = CliRunner()
    result = runner.invoke(
        _cli(), ["replay", str(path), "--tuners", "gld,nope", "--out", str(tmp_path / "r.json")]
    )
    assert result.exit_code != 0 and "nope" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"task": "t"}')
    result = runner.invoke(_cli(), ["replay", str(bad), "--out", str(tmp_path / "r.json")])
    assert result.exit_code != 0


def test_build_report_runs_its_own_replay(tables, tmp_path) -> None:
    """The way the service calls it: keywords only, no replay given."""
    metrics = build_report(
        tables,
        tuners=["gld", "cgld"],
        seeds=3,
        deltas=[1.0],
        out_dir=tmp_path,
        processes=1,
        bootstrap=SMALL,
    )
    assert metrics["delta"] == 1.0 and metrics["seeds"] == 3
    assert ReplayResult.load(tmp_path / "replay.json").seeds == 3
    saved = BootstrapReplay.model_validate_json((tmp_path / "bootstrap.json").read_text())
    assert len(saved.tables["adam"]["cgld"].costs["1.0"]) == SMALL.tables
    assert metrics["bootstrap"]["replay"]["tables"] == SMALL.tables
