"""`avatune atlas` on a miniature protocol: a real server, a real worker, every task trained,
the report written; a rerun resumes (finds the experiments, reuses the sections)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studies.atlas_spec import load_atlas, spec_hash
from tests.service.postgres import free_port

pytestmark = pytest.mark.slow

TINY = Path(__file__).with_name("tiny-atlas.yaml")


def _atlas(tmp_path: Path, port: int) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "studies",
        "atlas",
        "--spec",
        str(TINY),
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--port",
        str(port),
        "--workers",
        "1",
        "--processes",
        "1",
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "160", "OMP_NUM_THREADS": "1"},
    )


def test_tiny_atlas_writes_the_report_and_a_rerun_resumes(tmp_path: Path) -> None:
    spec = load_atlas(TINY)
    first = _atlas(tmp_path, free_port())
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("submitted experiment") == len(spec.experiments())
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spec_hash"] == spec_hash(spec)
    assert metrics["header"]["command"].startswith("avatune atlas")
    assert set(metrics["tasks"]) == {t.name for t in spec.tasks}
    for task, data in metrics["tasks"].items():
        rows = {r["optimizer"]: r for r in data["rows"]}
        assert set(rows) == set(spec.optimizers), task
        assert rows["sgd"]["grid"] == "α line" and rows["sgd"]["alpha_line_cost"] == 2
        assert rows["adam"]["grid"] == "3×3" and rows["adamw"]["grid"] == "2×2"
        assert rows["avagrad"]["interaction"]["ci"][0] is not None
        assert {"8", "32"} == set(rows["adam"]["tunability"])
        ranked = [r["optimizer"] for r in data["ranking"]]
        assert sorted(ranked) == ["adam", "adamw", "avagrad"]
        assert data["conclusion"]["conclusion"] in ("supported", "not supported", "inconclusive")
        assert (out / f"figure1_{task}.png").stat().st_size > 1000
    assert metrics["deltas"]["charlm-lstm"] == [1.0, 2.0]
    assert "mnist1d-mlp" in metrics["tasks"] and metrics["tasks"]["mnist1d-mlp"]["extra"]
    diagnosed = metrics["diagnostics"]["grids"]
    assert {(g["task"], g["weight_decay"]) for g in diagnosed if g["optimizer"] == "avagrad"} == {
        ("mnist1d-mlp", 5e-4),
        ("mnist1d-mlp", 0.0),
    }
    column = diagnosed[0]["columns"][0]
    assert column["gamma"] > 0 and 0 <= column["zero_fraction"] <= 1
    assert sum(column["shares"].values()) == pytest.approx(1.0, abs=1e-6)
    assert {"W1", "W2", "W3"} <= set(column["shares"])
    assert (out / "diagnostics.png").is_file()
    report = (out / "report.md").read_text()
    assert "## AvaGrad vs Adam, per task" in report and "% of f*" in report
    assert f"`{metrics['header']['commit']}`" in report

    second = _atlas(tmp_path, free_port())
    assert second.returncode == 0, second.stdout + second.stderr
    assert "submitted experiment" not in second.stdout
    assert second.stdout.count("found experiment") == len(spec.experiments())
    again = json.loads((out / "metrics.json").read_text())
    assert again["tasks"] == metrics["tasks"]
    assert again["header"]["sessions"] == 2
