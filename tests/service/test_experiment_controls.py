"""Pause, resume, cancel and delete a whole experiment over the API, on SQLite and
PostgreSQL: all its grids at once, a clear 409 when its state does not allow it, a 404 for
one that does not exist, the token on every one, and a cancelled experiment that says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.helpers import app_for, drive

TOKEN = {"Authorization": "Bearer tok-9"}
SPEC = {
    "name": "controlled",
    "task": "mnist1d-mlp",
    "optimizers": ["adam", "avagrad"],
    "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8, 1e-4]},
    "fidelity": {"steps": 5},
}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(database_url, token="tok-9"), headers=TOKEN) as test_client:
        yield test_client


def _experiment(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/experiments", json=SPEC)
    assert response.status_code == 201, response.text
    return response.json()


def _states(body: dict[str, Any]) -> list[str]:
    return [s["state"] for s in body["studies"]]


def _lease(client: TestClient, n: int) -> dict[str, Any]:
    return client.post("/api/leases", json={"worker_id": "w", "max_trials": n}).json()


def test_pause_and_resume_move_every_grid(client: TestClient) -> None:
    eid = _experiment(client)["id"]
    paused = client.post(f"/api/experiments/{eid}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "paused" and _states(paused.json()) == ["paused"] * 2
    assert _lease(client, 4)["trials"] == []  # nothing is handed out
    again = client.post(f"/api/experiments/{eid}/pause")
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"cannot pause experiment {eid}: it is paused (only a running experiment can be paused)"
    )
    resumed = client.post(f"/api/experiments/{eid}/resume").json()
    assert resumed["state"] == "running" and _states(resumed) == ["running"] * 2
    assert len(_lease(client, 3)["trials"]) == 3
    refused = client.post(f"/api/experiments/{eid}/resume")
    assert refused.status_code == 409 and "only a paused experiment" in refused.json()["detail"]


def test_cancel_drops_queued_trials_and_the_experiment_says_cancelled(client: TestClient) -> None:
    experiment = _experiment(client)
    eid = experiment["id"]
    lease = _lease(client, 2)  # two leased trials of the first grid
    cancelled = client.post(f"/api/experiments/{eid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["state"] == "cancelled" and _states(body) == ["cancelled"] * 2
    assert body["studies"][0]["counts"] == {"leased": 2, "cancelled": 2}
    assert body["studies"][1]["counts"] == {"cancelled": 4}
    assert _lease(client, 4)["trials"] == []
    # a leased trial may still report; the experiment stays cancelled
    trial = lease["trials"][0]
    late = client.post(
        f"/api/trials/{trial['trial_id']}/result", json={"token": lease["token"], "value": 3.0}
    )
    assert late.status_code == 200
    assert client.get(f"/api/experiments/{eid}").json()["state"] == "cancelled"
    report = client.get(f"/api/experiments/{eid}/report")
    assert report.status_code == 409 and "was cancelled" in report.json()["detail"]
    for action in ("pause", "resume", "cancel"):
        refused = client.post(f"/api/experiments/{eid}/{action}")
        assert refused.status_code == 409, action
        assert f"cannot {action} experiment {eid}: it is cancelled" in refused.json()["detail"]


def test_cancel_a_paused_experiment(client: TestClient) -> None:
    eid = _experiment(client)["id"]
    client.post(f"/api/experiments/{eid}/pause").raise_for_status()
    body = client.post(f"/api/experiments/{eid}/cancel").json()
    assert body["state"] == "cancelled" and _states(body) == ["cancelled"] * 2


def test_grids_cancelled_one_by_one_make_a_cancelled_experiment(client: TestClient) -> None:
    experiment = _experiment(client)
    first, second = (s["id"] for s in experiment["studies"])
    client.post(f"/api/studies/{first}/cancel").raise_for_status()
    assert client.get(f"/api/experiments/{experiment['id']}").json()["state"] == "running"
    drive(client)  # the other grid completes
    body = client.get(f"/api/experiments/{experiment['id']}").json()
    assert _states(body) == ["cancelled", "done"] and body["state"] == "cancelled"
    report = client.get(f"/api/experiments/{experiment['id']}/report")
    assert report.status_code == 409 and "was cancelled" in report.json()["detail"]
    assert client.post(f"/api/studies/{second}/cancel").status_code == 409


def test_only_unfinished_grids_move(client: TestClient) -> None:
    experiment = _experiment(client)
    second = experiment["studies"][1]["id"]
    client.post(f"/api/studies/{second}/pause").raise_for_status()
    drive(client)  # the first grid completes, the second waits paused
    paused = client.post(f"/api/experiments/{experiment['id']}/pause").json()
    assert _states(paused) == ["done", "paused"]
    resumed = client.post(f"/api/experiments/{experiment['id']}/resume").json()
    assert _states(resumed) == ["done", "running"] and resumed["state"] == "running"
    drive(client)
    assert client.get(f"/api/experiments/{experiment['id']}").json()["state"] == "done"
    done = client.post(f"/api/experiments/{experiment['id']}/cancel")
    assert done.status_code == 409 and "it is done" in done.json()["detail"]


def test_delete_an_experiment(client: TestClient) -> None:
    experiment = _experiment(client)
    eid, sid = experiment["id"], experiment["studies"][0]["id"]
    lease = _lease(client, 1)
    assert client.delete(f"/api/experiments/{eid}").status_code == 204
    assert client.get(f"/api/experiments/{eid}").status_code == 404
    assert client.get(f"/api/studies/{sid}").status_code == 404
    trial = lease["trials"][0]
    late = client.post(
        f"/api/trials/{trial['trial_id']}/result", json={"token": lease["token"], "value": 1.0}
    )
    assert late.status_code in (404, 409)
    gone = client.delete(f"/api/experiments/{eid}")
    assert gone.status_code == 404 and "does not exist" in gone.json()["detail"]


@pytest.mark.parametrize("method", ["pause", "resume", "cancel", "delete"])
def test_missing_experiment_is_404(client: TestClient, method: str) -> None:
    if method == "delete":
        response = client.delete("/api/experiments/999")
    else:
        response = client.post(f"/api/experiments/999/{method}")
    assert response.status_code == 404
    assert response.json()["detail"] == "experiment 999 does not exist"


def test_every_control_needs_the_token(client: TestClient) -> None:
    eid = _experiment(client)["id"]
    for action in ("pause", "resume", "cancel"):
        bare = client.post(f"/api/experiments/{eid}/{action}", headers={"Authorization": ""})
        assert bare.status_code == 401, action
        wrong = client.post(
            f"/api/experiments/{eid}/{action}", headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 403, action
    assert (
        client.delete(f"/api/experiments/{eid}", headers={"Authorization": ""}).status_code == 401
    )
    assert client.get(f"/api/experiments/{eid}").json()["state"] == "running"


def test_controls_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for action in ("pause", "resume", "cancel"):
        operation = paths[f"/api/experiments/{{experiment_id}}/{action}"]["post"]
        assert operation["summary"] == f"{action.capitalize()} an experiment"
        assert {"404", "409"} <= set(operation["responses"])
        assert operation["security"]
    deletion = paths["/api/experiments/{experiment_id}"]["delete"]
    assert (
        deletion["summary"] == "Delete an experiment" and "grid studies" in deletion["description"]
    )
