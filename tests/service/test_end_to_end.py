"""End to end with real training: a server and two `avatune worker` processes run a grid
study and a TPE study on mnist1d-mlp at low fidelity, and a quick experiment whose report
appears."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from studies.specs import SPECS_DIR
from tests.service.helpers import ServerProcess, start_worker, wait_until

pytestmark = pytest.mark.slow
STEPS = 50


def _spec(
    name: str,
    optimizer: str,
    space: dict[str, Any],
    tuner: dict[str, Any],
    budget: int | None = None,
) -> dict[str, Any]:
    spec = {
        "name": name,
        "task": "mnist1d-mlp",
        "optimizer": optimizer,
        "space": space,
        "tuner": tuner,
        "fidelity": {"steps": STEPS},
    }
    return spec | ({"budget": budget} if budget else {})


def test_grid_tpe_and_quick_experiment(sqlite_url: str, tmp_path: Path) -> None:
    import yaml

    log = tmp_path / "log.txt"
    quick = yaml.safe_load((SPECS_DIR / "quick-mnist1d.yaml").read_text())
    quick["fidelity"]["steps"] = STEPS
    with ServerProcess(sqlite_url, lease_seconds=60, log=log) as server:
        post = lambda path, body: httpx.post(f"{server.url}{path}", json=body, timeout=60)  # noqa: E731
        grid = post(
            "/api/studies",
            _spec(
                "grid",
                "adam",
                {"alphas": [1e-3, 1e-2, 1e-1], "epsilons": [1e-8, 1e-4, 1.0]},
                {"name": "grid", "seed": 0},
            ),
        )
        tpe = post(
            "/api/studies",
            _spec("tpe", "avagrad", {"grid": "coarse"}, {"name": "tpe", "seed": 0}, budget=8),
        )
        experiment = post("/api/experiments", quick)
        for response in (grid, tpe, experiment):
            assert response.status_code == 201, response.text
        workers = [start_worker(server.url, max_batch=32, fake=False, log=log) for _ in range(2)]
        try:

            def state(path: str) -> str:
                return httpx.get(f"{server.url}{path}", timeout=30).json()["state"]

            studies = [f"/api/studies/{grid.json()['id']}", f"/api/studies/{tpe.json()['id']}"]
            exp_path = f"/api/experiments/{experiment.json()['id']}"
            finished = wait_until(
                lambda: all(state(p) == "done" for p in [*studies, exp_path]), 600, interval=1
            )
            assert finished, log.read_text()[-5000:]
            answers: list[httpx.Response] = []

            def report_ready() -> bool:
                answers.append(httpx.get(f"{server.url}{exp_path}/report", timeout=60))
                return answers[-1].status_code != 202

            assert wait_until(report_ready, 600, interval=1)
            report = answers[-1]
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=60) for worker in workers]
        grid_trials = httpx.get(f"{server.url}{studies[0]}/trials").json()["trials"]
        tpe_study = httpx.get(f"{server.url}{studies[1]}").json()
    assert codes == [0, 0]
    assert len(grid_trials) == 9
    assert all(
        0 <= t["value"] <= 100 and t["state"] in ("complete", "diverged") for t in grid_trials
    )
    assert tpe_study["trainings_proposed"] == 8 and tpe_study["best"]["value"] < 90
    assert report.status_code == 200, report.text[:2000]
    body = report.json()
    assert [t["optimizer"] for t in body["tables"]] == ["adam", "avagrad"]
    assert len(body["tables"][0]["error"]) == 11 and body["metrics"]
