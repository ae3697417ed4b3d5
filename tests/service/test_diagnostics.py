"""Mechanism diagnostics end to end: the spec field, the wire bounds, storage and the route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from avatune.lease_client import Backoff, ServiceClient
from studies.protocol import MAX_DIAGNOSTICS_VALUES, TrialResult
from studies.specs import ExperimentSpec, Fidelity
from tests.service.helpers import ThreadServer, app_for, grid_study
from workers.lease_training import torch_trainer
from workers.loop import WorkerLoop

MLP_LAYERS = ["W1", "b1", "W2", "b2", "W3", "b3"]
TOKEN = "t" * 20


def _record(step: int, names: int = 2) -> dict[str, Any]:
    shares = {f"p{k}": 1 / names for k in range(names)}
    return {"step": step, "gamma": 0.5, "zero_fraction": 0.25, "shares": shares}


def test_fidelity_field_is_checked_and_passed_to_experiment_studies() -> None:
    assert Fidelity().diagnostics_every is None
    assert Fidelity(steps=100, diagnostics_every=100).diagnostics_every == 100
    assert Fidelity(diagnostics_every=7).diagnostics_every == 7  # the task's steps: unknown
    with pytest.raises(ValidationError, match="exceeds steps"):
        Fidelity(steps=10, diagnostics_every=11)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Fidelity(steps=10, diagnostics_every=0)
    experiment = ExperimentSpec(
        name="e",
        task="mnist1d-mlp",
        optimizers=["adam", "avagrad"],
        space={"grid": "coarse"},
        fidelity={"steps": 50, "diagnostics_every": 25},
    )
    assert [s.fidelity.diagnostics_every for s in experiment.study_specs()] == [25, 25]


def test_results_carry_bounded_diagnostics() -> None:
    base = {"token": TOKEN, "value": 2.0, "seed_values": [1.0, 3.0]}
    ok = TrialResult.model_validate(base | {"seed_diagnostics": [[_record(5)], []]})
    assert ok.seed_diagnostics is not None and ok.seed_diagnostics[0][0].shares["p1"] == 0.5
    bad = [
        ({"seed_diagnostics": [[_record(5)]]}, "one per seed"),
        ({"seed_values": None, "value": 1.0, "seed_diagnostics": [[]]}, "need seed_values"),
        ({"seed_diagnostics": [[_record(k) for k in range(1, 102)], []]}, "at most 100"),
        ({"seed_diagnostics": [[_record(1, names=65)], []]}, "at most 64"),
        ({"seed_diagnostics": [[_record(1) | {"zero_fraction": 1.5}], []]}, "less than or equal"),
        ({"seed_diagnostics": [[_record(1) | {"gamma": float("inf")}], []]}, "finite"),
    ]
    for change, message in bad:
        with pytest.raises(ValidationError, match=message):
            TrialResult.model_validate(base | change)
    many = [[_record(k, names=60) for k in range(1, 101)]] * 3  # 3 · 100 · 63 values
    assert MAX_DIAGNOSTICS_VALUES < 3 * 100 * 63
    with pytest.raises(ValidationError, match="send fewer records"):
        TrialResult.model_validate(
            {"token": TOKEN, "value": 1.0, "seed_values": [1.0] * 3, "seed_diagnostics": many}
        )


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(database_url)) as test_client:
        yield test_client


def test_stored_diagnostics_are_listed_per_training(client: TestClient) -> None:
    """On both databases: only trainings that sent diagnostics are listed, in number order,
    in pages; a result without them stores SQL NULL."""
    spec = grid_study(n_alpha=2, n_eps=2, optimizer="avagrad")
    spec["fidelity"] |= {"diagnostics_every": 5}
    sid = client.post("/api/studies", json=spec).json()["id"]
    lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 4}).json()
    for k, trial in enumerate(lease["trials"]):
        body: dict[str, Any] = {"token": lease["token"], "value": 1.0, "seed_values": [1.0]}
        if k != 1:
            body["seed_diagnostics"] = [[_record(5), _record(10)]]
        answer = client.post(f"/api/trials/{trial['trial_id']}/result", json=body)
        assert answer.status_code == 200, answer.text
    page = client.get(f"/api/studies/{sid}/diagnostics").json()
    listed = page["trainings"]
    assert [t["number"] for t in listed] == [0, 2, 3] and page["next_after"] is None
    first = lease["trials"][0]
    assert listed[0]["alpha"] == first["alpha"] and listed[0]["eps"] == first["eps"]
    assert listed[0]["state"] == "complete" and listed[0]["seeds"] == [[_record(5), _record(10)]]
    paged = client.get(f"/api/studies/{sid}/diagnostics", params={"limit": 2}).json()
    assert [t["number"] for t in paged["trainings"]] == [0, 2] and paged["next_after"] == 2
    rest = client.get(f"/api/studies/{sid}/diagnostics", params={"after": 2}).json()
    assert [t["number"] for t in rest["trainings"]] == [3]
    assert client.get("/api/studies/999/diagnostics").status_code == 404
    assert client.get(f"/api/studies/{sid}/diagnostics?limit=0").status_code == 422
    assert "/api/studies/{study_id}/diagnostics" in client.get("/openapi.json").json()["paths"]


@pytest.mark.slow
def test_a_worker_trains_and_the_route_returns_diagnostics(sqlite_url: str) -> None:
    """The real trainer through the real service: AvaGrad records at steps 10 and 20 for
    each of two seeds, with the MLP's layers; Adam in the same lease records none."""
    fidelity = {"steps": 20, "seeds": 2, "diagnostics_every": 10}
    avagrad = grid_study("ava", n_alpha=2, n_eps=2, optimizer="avagrad")
    adam = grid_study("adam", n_alpha=1, n_eps=2, optimizer="adam")
    with ThreadServer(app_for(sqlite_url, lease_seconds=120)) as server:
        ids = []
        for spec in (avagrad, adam):
            spec["fidelity"] = fidelity
            created = httpx.post(f"{server.url}/api/studies", json=spec)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        client = ServiceClient(server.url, backoff=Backoff(first=0.05, cap=0.2))
        loop = WorkerLoop(client, torch_trainer("cpu"), max_batch=8, once=True)
        stats = loop.run()
        assert stats.delivered == 6, stats
        ava, none = (httpx.get(f"{server.url}/api/studies/{i}/diagnostics").json() for i in ids)
    assert none["trainings"] == []
    assert len(ava["trainings"]) == 4
    for training in ava["trainings"]:
        assert len(training["seeds"]) == 2
        for records in training["seeds"]:
            assert [r["step"] for r in records] == [10, 20]
            for r in records:
                assert list(r["shares"]) == MLP_LAYERS
                assert sum(r["shares"].values()) == pytest.approx(1.0)
                assert r["gamma"] > 0 and 0 <= r["zero_fraction"] <= 1
    points = {(t["alpha"], t["eps"]) for t in ava["trainings"]}
    space = avagrad["space"]
    assert points == {(a, e) for a in space["alphas"] for e in space["epsilons"]}
