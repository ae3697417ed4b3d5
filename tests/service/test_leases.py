"""Leases on SQLite and PostgreSQL: atomic hand-out, expiry, heartbeats, reports once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.helpers import app_for, grid_study

LEASE = 0.6


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(database_url, lease_seconds=LEASE, max_attempts=2)) as test_client:
        yield test_client


def lease(client: TestClient, k: int = 1, worker: str = "w") -> dict[str, Any]:
    response = client.post("/api/leases", json={"worker_id": worker, "max_trials": k})
    assert response.status_code == 200, response.text
    return response.json()


def report(client: TestClient, got: dict[str, Any], index: int = 0, **body: Any) -> Any:
    trial = got["trials"][index]["trial_id"]
    return client.post(
        f"/api/trials/{trial}/result", json={"token": got["token"], "value": 1.0} | body
    )


def trials(client: TestClient, study_id: int) -> list[dict[str, Any]]:
    return client.get(f"/api/studies/{study_id}/trials").json()["trials"]


def test_leases_hand_out_each_trial_once_with_task_and_fidelity(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=3, steps=25))
    first, second = lease(client, 4), lease(client, 4)
    assert len(first["trials"]) == 4 and len(second["trials"]) == 2
    assert first["token"] != second["token"]
    assert first["task"]["name"] == "mnist1d-mlp" and first["fidelity"]["steps"] == 25
    assert first["trials"][0]["optimizer"]["name"] == "adam"
    assert first["heartbeat_seconds"] == pytest.approx(LEASE / 3)
    ids = [t["trial_id"] for t in first["trials"] + second["trials"]]
    assert len(set(ids)) == 6
    assert lease(client, 4)["trials"] == []


def test_a_lease_never_mixes_tasks_or_fidelities(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study("a", n_alpha=1, n_eps=2, steps=10))
    client.post("/api/studies", json=grid_study("b", n_alpha=1, n_eps=2, steps=20))
    client.post(
        "/api/studies", json=grid_study("c", n_alpha=1, n_eps=2, steps=10, optimizer="avagrad")
    )
    got = lease(client, 10)
    assert got["fidelity"]["steps"] == 10 and len(got["trials"]) == 4
    assert {t["optimizer"]["name"] for t in got["trials"]} == {"adam", "avagrad"}
    rest = lease(client, 10)
    assert rest["fidelity"]["steps"] == 20 and len(rest["trials"]) == 2


def test_result_is_counted_once(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=1, n_eps=1))
    got = lease(client)
    assert report(client, got, value=2.5, test_value=3.0, curve=[1.0]).json()["state"] == "complete"
    again = report(client, got, value=1.0)
    assert again.status_code == 409 and "drop this report" in again.json()["detail"]
    study = client.get("/api/studies/1").json()
    assert study["best"]["value"] == 2.5 and study["state"] == "done"
    trial_id = got["trials"][0]["trial_id"]
    failure = client.post(f"/api/trials/{trial_id}/failure", json={"token": got["token"]})
    assert failure.status_code == 409


def test_diverged_is_a_result(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=1, n_eps=1))
    got = lease(client)
    assert report(client, got, value=90.0, diverged=True).json()["state"] == "diverged"
    trial = trials(client, 1)[0]
    assert trial["diverged"] and trial["value"] == 90.0
    assert client.get("/api/studies/1").json()["state"] == "done"


def test_expired_lease_goes_back_to_the_queue_then_fails(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=1, n_eps=1))
    first = lease(client, worker="a")
    time.sleep(LEASE + 0.1)
    late = report(client, first)
    assert late.status_code == 409 and "expired" in late.json()["detail"]
    second = lease(client, worker="b")  # reaps the expired lease, then leases it again
    assert second["trials"][0]["trial_id"] == first["trials"][0]["trial_id"]
    assert trials(client, 1)[0]["attempts"] == 2
    assert report(client, first).status_code == 409  # the old token stays dead
    time.sleep(LEASE + 0.1)
    assert lease(client)["trials"] == []  # max_attempts = 2: failed now
    trial = trials(client, 1)[0]
    assert trial["state"] == "failed" and "expired" in trial["error"]
    assert client.get("/api/studies/1").json()["state"] == "failed"


def test_heartbeats_keep_a_lease_alive(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=1, n_eps=2))
    got = lease(client, 2)
    trial_id = got["trials"][0]["trial_id"]
    for done in (1, 2, 3):
        time.sleep(LEASE / 2)
        beat = client.post(
            f"/api/trials/{trial_id}/heartbeat",
            json={"token": got["token"], "done": done, "total": 3},
        )
        assert beat.status_code == 200 and beat.json()["trials"] == 2
    assert {t["progress_done"] for t in trials(client, 1)} == {3}
    assert report(client, got, 0).status_code == 200
    assert report(client, got, 1).status_code == 200  # the heartbeat covered the whole lease
    wrong = client.post(f"/api/trials/{trial_id}/heartbeat", json={"token": got["token"]})
    assert wrong.status_code == 409


def test_release_and_failure(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=1, n_eps=1))
    got = lease(client)
    trial_id = got["trials"][0]["trial_id"]
    released = client.post(
        f"/api/trials/{trial_id}/failure",
        json={"token": got["token"], "release": True, "error": "stopping"},
    )
    assert released.json()["state"] == "queued"
    assert trials(client, 1)[0]["attempts"] == 0
    got = lease(client)
    failed = client.post(
        f"/api/trials/{trial_id}/failure",
        json={"token": got["token"], "error": "CUDA out of memory"},
    )
    assert failed.json()["state"] == "queued"  # attempt 1 of 2
    got = lease(client)
    failed = client.post(
        f"/api/trials/{trial_id}/failure",
        json={"token": got["token"], "error": "CUDA out of memory"},
    )
    assert failed.json()["state"] == "failed"
    trial = trials(client, 1)[0]
    assert trial["error"] == "CUDA out of memory" and trial["attempts"] == 2
    assert client.get("/api/studies/1").json()["state"] == "failed"
