"""Workers get only trials they can run; a study nobody can run says why and stays queued."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from avatune.lease_client import Backoff, ServiceClient
from service.repositories import capabilities
from studies.protocol import LeaseResponse
from tests.service.fake_training import train as fake_train
from tests.service.helpers import ThreadServer, app_for, grid_study, wait_until
from workers.capabilities import WorkerCapabilities
from workers.lease_training import Outcome, ProgressFn
from workers.loop import WorkerLoop

NADAM = "torch.optim:NAdam"
MISSING = "torch.optim:NoSuchOptimizer"
BUILTIN_TASKS = ["mnist1d-mlp"]


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(database_url)) as test_client:
        yield test_client


def create(client: TestClient, **options: Any) -> dict[str, Any]:
    response = client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=2, **options))
    assert response.status_code == 201, response.text
    return response.json()


def lease(client: TestClient, worker: str = "w", **fields: Any) -> dict[str, Any]:
    body = {"worker_id": worker, "max_trials": 16, **fields}
    response = client.post("/api/leases", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_worker_leases_only_what_it_advertised_and_is_asked_to_probe_the_rest(
    client: TestClient,
) -> None:
    adam = create(client, name="a")
    nadam = create(client, name="n", optimizer=NADAM)
    lists = {"tasks": BUILTIN_TASKS, "optimizers": ["adam"]}
    first = lease(client, **lists)
    assert {t["study_id"] for t in first["trials"]} == {adam["id"]} and len(first["trials"]) == 4
    assert first["probe"] == [{"kind": "optimizer", "name": NADAM}]  # asked while it is busy
    empty = lease(client, **lists)
    assert empty["trials"] == [] and empty["probe"] == [{"kind": "optimizer", "name": NADAM}]
    unable = [{"kind": "optimizer", "name": NADAM, "error": "ImportError: no"}]
    assert lease(client, **lists, unable=unable)["probe"] == []  # said no: not asked again
    second = lease(client, tasks=BUILTIN_TASKS, optimizers=["adam", NADAM])
    assert {t["study_id"] for t in second["trials"]} == {nadam["id"]}
    assert second["trials"][0]["optimizer"]["name"] == NADAM


def test_a_worker_without_lists_runs_anything(client: TestClient) -> None:
    create(client, optimizer=NADAM)
    assert len(lease(client)["trials"]) == 4


def test_a_study_id_lease_takes_only_that_study(client: TestClient) -> None:
    create(client, name="a")
    other = create(client, name="b")
    got = lease(client, study_id=other["id"])
    assert {t["study_id"] for t in got["trials"]} == {other["id"]} and got["probe"] == []


def test_tuner_studies_are_asked_only_by_capable_workers(client: TestClient) -> None:
    study = create(client, optimizer=NADAM, tuner="random", budget=3)
    assert lease(client, tasks=BUILTIN_TASKS, optimizers=["adam"])["trials"] == []
    assert client.get(f"/api/studies/{study['id']}").json()["trainings_proposed"] == 0
    got = lease(client, tasks=BUILTIN_TASKS, optimizers=[NADAM])
    assert len(got["trials"]) == 3


def test_a_study_nobody_can_run_waits_with_its_reason(client: TestClient) -> None:
    study = create(client, optimizer=MISSING)
    path = f"/api/studies/{study['id']}"
    assert "none has asked for trials" in client.get(path).json()["waiting"]
    error = "AttributeError: torch.optim has no attribute 'NoSuchOptimizer'"
    unable = [{"kind": "optimizer", "name": MISSING, "error": error}]
    for worker in ("w1", "w2"):
        lease(client, worker, tasks=BUILTIN_TASKS, optimizers=["adam"], unable=unable)
    shown = client.get(path).json()
    assert shown["state"] == "running" and shown["counts"] == {"queued": 4}
    reason = shown["waiting"]
    assert f"can run optimizer {MISSING!r}" in reason and "none of the 2 seen" in reason
    assert f"w1: {error}" in reason and f"w2: {error}" in reason
    assert lease(client, "w3", optimizers=[MISSING], tasks=BUILTIN_TASKS)["trials"]
    assert client.get(path).json()["waiting"] is None  # being trained


def test_an_external_study_waits_for_its_own_loop(client: TestClient) -> None:
    spec = grid_study(n_alpha=2, n_eps=1) | {"task": {"name": "external"}}
    study = client.post("/api/studies", json=spec).json()
    lease(client, "w", tasks=BUILTIN_TASKS, optimizers=["adam"])  # a worker: never probes it
    assert (
        "a training loop of your own" in client.get(f"/api/studies/{study['id']}").json()["waiting"]
    )


def test_names_are_checked_at_submission(client: TestClient) -> None:
    bad = client.post("/api/studies", json=grid_study(optimizer="adamm"))
    assert bad.status_code == 422 and "did you mean 'adam'?" in bad.text
    malformed = client.post("/api/studies", json=grid_study(optimizer="torch.optim:Ada m"))
    assert malformed.status_code == 422 and "malformed import path" in malformed.text
    spec = {
        "name": "e",
        "task": "mnist1d-mlp",
        "optimizers": ["adam", "lion"],
        "space": {"grid": "coarse"},
    }
    experiment = client.post("/api/experiments", json=spec)
    assert (
        experiment.status_code == 422 and "optimizers[1].name: unknown optimizer" in experiment.text
    )


def test_waiting_reason_names_what_is_missing() -> None:
    need = capabilities.Need(1, "pkg:Task", "adam")
    workers = [capabilities.LiveWorker("w", None)]
    assert capabilities.waiting_reason(need, workers) is None  # a worker without lists
    one_study = capabilities.Capabilities(study_id=2)
    lacking = capabilities.Capabilities(tasks=["mnist1d-mlp"], optimizers=["adam"])
    reason = capabilities.waiting_reason(
        need, [capabilities.LiveWorker("u", one_study), capabilities.LiveWorker("w", lacking)]
    )
    assert reason is not None and "can run task 'pkg:Task':" in reason and "optimizer" not in reason


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ThreadServer]:
    with ThreadServer(app_for(sqlite_url, lease_seconds=30)) as running:
        yield running


def test_the_worker_loop_probes_import_paths_and_runs_what_imports(server: ThreadServer) -> None:
    """A real worker's capabilities: NAdam imports and is trained; a missing class is
    reported unable, once, and its study waits with the import error."""
    ok = httpx.post(
        f"{server.url}/api/studies", json=grid_study("n", n_alpha=2, n_eps=1, optimizer=NADAM)
    ).json()
    missing = httpx.post(
        f"{server.url}/api/studies", json=grid_study("m", n_alpha=1, n_eps=1, optimizer=MISSING)
    ).json()
    seen: list[str] = []

    def train(lease_: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        seen.extend(t.optimizer.name for t in lease_.trials)
        return fake_train(lease_, progress)

    caps = WorkerCapabilities()
    worker = WorkerLoop(
        ServiceClient(server.url, backoff=Backoff(first=0.05, cap=0.2)),
        train,
        worker_id="probe-1",
        capabilities=caps,
    )

    def study(sid: int) -> dict[str, Any]:
        return httpx.get(f"{server.url}/api/studies/{sid}").json()

    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert wait_until(lambda: study(ok["id"])["state"] == "done", 20)
        missing_class = "has no attribute 'NoSuchOptimizer'"
        assert wait_until(lambda: missing_class in (study(missing["id"])["waiting"] or ""), 10)
    finally:
        worker.stop.set()
        thread.join(timeout=10)
    assert seen == [NADAM, NADAM] and NADAM in caps.optimizers
    assert [c.name for c in caps.unable] == [MISSING]
    assert study(missing["id"])["counts"] == {"queued": 1}
