"""The HTTP API on SQLite and PostgreSQL: studies, trials, exports, experiments, workers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import reports
from tests.service.helpers import app_for, drive, grid_study, wait_until


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(database_url)) as test_client:
        yield test_client


def test_grid_study_is_queued_listed_and_shown(client: TestClient) -> None:
    response = client.post("/api/studies", json=grid_study(n_alpha=3, n_eps=4))
    assert response.status_code == 201, response.text
    study = response.json()
    assert study["counts"] == {"queued": 12}
    assert study["budget"] == 12 and study["state"] == "running" and study["progress"] == 0
    assert study["spec"]["tuner"]["seed"] == 7
    assert [s["id"] for s in client.get("/api/studies").json()] == [study["id"]]
    assert client.get(f"/api/studies/{study['id']}").json()["name"] == "g"
    missing = client.get("/api/studies/999")
    assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]


def test_results_give_progress_best_and_done(client: TestClient) -> None:
    study = client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=2)).json()
    assert drive(client, k=3, value=lambda a, e: a * 1000 + e) == 4
    done = client.get(f"/api/studies/{study['id']}").json()
    assert done["state"] == "done" and done["progress"] == 1.0 and done["trainings_done"] == 4
    assert done["counts"] == {"complete": 4}
    assert done["best"]["alpha"] == 1e-4 and done["best"]["eps"] == 1e-8
    assert done["finished_at"] is not None


def test_pause_resume_cancel(client: TestClient) -> None:
    sid = client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=3)).json()["id"]
    assert client.post(f"/api/studies/{sid}/pause").json()["state"] == "paused"
    lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 4}).json()
    assert lease["trials"] == [] and lease["retry_after"] > 0
    assert client.post(f"/api/studies/{sid}/pause").status_code == 409
    assert client.post(f"/api/studies/{sid}/resume").json()["state"] == "running"
    lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 2}).json()
    assert len(lease["trials"]) == 2
    cancelled = client.post(f"/api/studies/{sid}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["counts"] == {"leased": 2, "cancelled": 4}
    assert client.post(f"/api/studies/{sid}/resume").status_code == 409
    # a leased trial of a cancelled study may still report
    trial = lease["trials"][0]
    ok = client.post(
        f"/api/trials/{trial['trial_id']}/result", json={"token": lease["token"], "value": 3.0}
    )
    assert ok.status_code == 200


def test_delete_study(client: TestClient) -> None:
    sid = client.post("/api/studies", json=grid_study()).json()["id"]
    assert client.delete(f"/api/studies/{sid}").status_code == 204
    assert client.get(f"/api/studies/{sid}").status_code == 404
    assert client.delete(f"/api/studies/{sid}").status_code == 404
    again = client.post("/api/studies", json=grid_study()).json()["id"]
    assert again != sid  # ids are never reused


def test_trials_state_filter_and_incremental_after(client: TestClient) -> None:
    sid = client.post("/api/studies", json=grid_study(n_alpha=3, n_eps=3)).json()["id"]
    lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 4}).json()
    for trial in lease["trials"][:3]:
        client.post(
            f"/api/trials/{trial['trial_id']}/result",
            json={"token": lease["token"], "value": 1.0, "curve": [3.0, 2.0]},
        )
    page = client.get(f"/api/studies/{sid}/trials", params={"state": "complete"}).json()
    assert len(page["trials"]) == 3 and page["trials"][0]["curve"] is None
    both = client.get(
        f"/api/studies/{sid}/trials", params={"state": ["complete", "leased"], "curves": True}
    ).json()
    assert len(both["trials"]) == 4
    assert next(t["curve"] for t in both["trials"] if t["state"] == "complete") == [3.0, 2.0]
    numbers: list[int] = []
    after = None
    while True:
        params = {"limit": 4} | ({"after": after} if after is not None else {})
        page = client.get(f"/api/studies/{sid}/trials", params=params).json()
        numbers += [t["number"] for t in page["trials"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert numbers == list(range(9))
    assert client.get("/api/studies/999/trials").status_code == 404


def test_exports(client: TestClient) -> None:
    sid = client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=2)).json()["id"]
    drive(client)
    text = client.get(f"/api/studies/{sid}/export.csv")
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert len(rows) == 4 and {r["state"] for r in rows} == {"complete"}
    assert float(rows[0]["alpha"]) > 0
    data = client.get(f"/api/studies/{sid}/export.json").json()
    assert data["study"]["id"] == sid and len(data["trainings"]) == 4 and data["repeats"] == []


def _report(client: TestClient, experiment_id: int) -> Any:
    """Ask for a report until it is computed (202 meanwhile)."""
    path = f"/api/experiments/{experiment_id}/report"
    answers: list[Any] = []

    def settled() -> bool:
        answers.append(client.get(path))
        return answers[-1].status_code != 202

    assert wait_until(settled, 30)
    return answers[-1]


def test_experiment_progress_and_report(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_metrics(spec: object, tables: list, out_dir: object) -> dict:
        calls.append(tables)
        return {"interaction": {t.optimizer: 0.1 for t in tables}}

    failures = ["once"]

    def flaky_metrics(spec: object, tables: list, out_dir: object) -> dict:
        if failures:
            raise RuntimeError(f"report bug {failures.pop()}")
        return fake_metrics(spec, tables, out_dir)

    monkeypatch.setattr(reports, "build_metrics", flaky_metrics)
    spec = {
        "name": "exp",
        "task": "mnist1d-mlp",
        "optimizers": ["adam", {"name": "adabelief", "weight_decay": 1e-3}],
        "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8, 1e-4, 1.0]},
        "fidelity": {"steps": 5},
        "replay": {"tuners": ["random"], "seeds": 3},
    }
    response = client.post("/api/experiments", json=spec)
    assert response.status_code == 201, response.text
    experiment = response.json()
    eid = experiment["id"]
    assert [s["optimizer"] for s in experiment["studies"]] == ["adam", "adabelief"]
    shifted = experiment["studies"][1]["spec"]["space"]["epsilons"]
    assert shifted == pytest.approx([1e-16, 1e-12, 1e-8])
    assert client.get(f"/api/experiments/{eid}/report").status_code == 409
    drive(client, k=5)
    progress = client.get(f"/api/experiments/{eid}").json()
    assert progress["progress"] == 1.0 and progress["state"] == "done"
    failed = _report(client, eid)
    assert failed.status_code == 503 and "report bug once" in failed.json()["detail"]
    report = _report(client, eid)
    body = report.json()
    assert body["metrics"] == {"interaction": {"adam": 0.1, "adabelief": 0.1}}
    assert [t["optimizer"] for t in body["tables"]] == ["adam", "adabelief"]
    assert len(body["tables"][0]["error"]) == 2 and len(body["tables"][0]["error"][0]) == 3
    assert [t["settings"] for t in body["tables"]] == [{}, {"weight_decay": 1e-3}]
    assert client.get(f"/api/experiments/{eid}/report").json()["computed_at"] == body["computed_at"]
    assert len(calls) == 1  # stored, not recomputed
    assert client.get(f"/api/experiments/{eid}").json()["report_ready"] is True
    study_id = experiment["studies"][0]["id"]
    assert client.delete(f"/api/studies/{study_id}").status_code == 409
    assert client.delete(f"/api/experiments/{eid}").status_code == 204
    assert client.get(f"/api/studies/{study_id}").status_code == 404


def test_workers_health_metrics(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=1, n_eps=2))
    lease = client.post(
        "/api/leases", json={"worker_id": "box-1", "max_trials": 1, "device": "cpu", "host": "box"}
    ).json()
    client.post(
        f"/api/trials/{lease['trials'][0]['trial_id']}/heartbeat",
        json={"token": lease["token"], "done": 5, "total": 10},
    )
    workers = client.get("/api/workers").json()
    assert workers[0]["id"] == "box-1" and workers[0]["active"] == 1
    assert workers[0]["device"] == "cpu" and workers[0]["trials_leased"] == 1
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    metrics = client.get("/metrics").text
    assert 'avatune_trials{state="queued"} 1.0' in metrics
    assert 'avatune_trials{state="leased"} 1.0' in metrics
    assert "avatune_active_leases 1.0" in metrics
    latency = 'avatune_request_seconds_count{method="POST",route="/api/leases",status="200"}'
    assert latency in metrics


def test_text_with_nul_characters_is_refused(client: TestClient) -> None:
    """PostgreSQL cannot store NUL characters: they are a 422, never a 500."""
    response = client.post("/api/studies", json=grid_study(name="a\x00b"))
    assert response.status_code == 422 and "NUL" in response.text
    lease = client.post("/api/leases", json={"worker_id": "w", "device": "gpu\x00"})
    assert lease.status_code == 422
