"""A bits-per-character experiment's report speaks in % of f*: the spec's default δs, the
experiment page and the terminal summary (SQLite; the report computed for real)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from service.demo_summary import summary
from tests.service.helpers import app_for, drive, wait_until

SPEC = {
    "name": "lm",
    "task": "charlm-lstm",
    "optimizers": ["adam", "avagrad"],
    "space": {"alphas": [1e-3, 1e-2, 1e-1], "epsilons": [1e-8, 1e-6, 1e-4]},
    "fidelity": {"steps": 5, "seeds": 2},
    "replay": {
        "tuners": ["random", "gld", "cgld"],
        "seeds": 4,
        "bootstrap": {"tables": 3, "replays": 2, "slow_tables": 2, "slow_replays": 1},
    },
}


def test_a_bpc_experiment_reports_delta_in_percent_of_f_star(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # replays inline: no process pool to start
    with TestClient(app_for(sqlite_url, data_dir=tmp_path)) as client:
        created = client.post("/api/experiments", json=SPEC)
        assert created.status_code == 201, created.text
        eid = created.json()["id"]
        assert created.json()["spec"]["replay"]["deltas"] == [1.0, 2.0]
        drive(client, k=9)
        path = f"/api/experiments/{eid}/report"
        assert wait_until(lambda: client.get(path).status_code != 202, 120)
        metrics = client.get(path).json()["metrics"]
        assert metrics["delta_kind"] == "relative" and metrics["deltas"] == [1.0, 2.0]
        page = client.get(f"/experiments/{eid}").text
    for part in (
        "δ = 1.0, 2.0 % of f*",
        "Tuning cost to δ = 1 % of f*",
        "Tuning cost to δ = 2 % of f*",
        "best validation bits per character (bpc) (SE of f*)",
        "Targets (f* + δ/100·f*, bpc)",
        "starts within δ = 1 % of f*",
    ):
        assert part in page, part
    assert " pp" not in page
    console = Console(width=400, record=True)
    console.print(summary(metrics))
    text = " ".join(console.export_text().split())  # titles wrap
    assert "within δ = 1 % of f* of the best" in text
    assert "best validation bits per character (bpc) (SE)" in text
