"""Tuners run on the server with their state in the database only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.fake_training import objective
from tests.service.helpers import app_for, drive, grid_study

TUNERS = ("random", "tpe", "cmaes", "gld", "cgld")


def _points(client: TestClient, study_id: int) -> list[tuple[float, float, str, int | None]]:
    page = client.get(f"/api/studies/{study_id}/trials", params={"limit": 5000}).json()
    return [(t["alpha"], t["eps"], t["state"], t["source_trial_id"]) for t in page["trials"]]


def _step(client: TestClient, n: int) -> None:
    """Lease one trial at a time and report it, n times."""
    for _ in range(n):
        got = client.post("/api/leases", json={"worker_id": "w", "max_trials": 1}).json()
        trial = got["trials"][0]
        value = objective(trial["alpha"], trial["eps"])
        ok = client.post(
            f"/api/trials/{trial['trial_id']}/result", json={"token": got["token"], "value": value}
        )
        assert ok.status_code == 200


@pytest.mark.parametrize("tuner", TUNERS)
def test_each_tuner_runs_its_budget(sqlite_url: str, tuner: str) -> None:
    with TestClient(app_for(sqlite_url)) as client:
        spec = grid_study(n_alpha=6, n_eps=6, tuner={"name": tuner, "seed": 3}, budget=12)
        sid = client.post("/api/studies", json=spec).json()["id"]
        trained = drive(client, k=2)
        study = client.get(f"/api/studies/{sid}").json()
    assert study["state"] == "done"
    assert trained == study["trained"]
    assert study["trained"] == 12 or study["stop_reason"]
    points = _points(client, sid)
    originals = [(a, e) for a, e, _, source in points if source is None]
    assert len(originals) == len(set(originals)) == study["trained"]
    assert study["best"]["value"] == min(objective(a, e) for a, e in originals)


def test_a_point_asked_again_gets_the_stored_result(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url)) as client:
        spec = grid_study(n_alpha=3, n_eps=3, tuner={"name": "gld", "seed": 1}, budget=9)
        sid = client.post("/api/studies", json=spec).json()["id"]
        trained = drive(client)
        page = client.get(f"/api/studies/{sid}/trials", params={"limit": 5000}).json()
    by_id = {t["id"]: t for t in page["trials"]}
    copies = [t for t in page["trials"] if t["source_trial_id"] is not None]
    assert trained == 9 and copies, "GLD on a 3×3 grid revisits points"
    for copy in copies:
        original = by_id[copy["source_trial_id"]]
        assert (copy["alpha"], copy["eps"]) == (original["alpha"], original["eps"])
        assert copy["value"] == original["value"] and copy["state"] == "complete"
        assert copy["worker_id"] is None  # never leased, never trained


@pytest.mark.parametrize("tuner", ("tpe", "gld", "cgld", "cmaes"))
def test_restarted_server_continues_the_same_run(database_url: str, tuner: str) -> None:
    """One server for the whole run, or a new one every few trials: the same points."""
    spec = grid_study(n_alpha=7, n_eps=7, tuner={"name": tuner, "seed": 11}, budget=14)
    with TestClient(app_for(database_url)) as client:
        one = client.post("/api/studies", json=spec | {"name": "one"}).json()["id"]
        other = client.post("/api/studies", json=spec | {"name": "other"}).json()["id"]
        client.post(f"/api/studies/{other}/pause")
        _step(client, 14)
        reference = _points(client, one)
        client.post(f"/api/studies/{one}/pause")
        client.post(f"/api/studies/{other}/resume")
    for chunk in (3, 5, 6):  # three "restarts": a fresh app (and connection pool) each time
        with TestClient(app_for(database_url)) as client:
            _step(client, chunk)
    with TestClient(app_for(database_url)) as client:
        continued = _points(client, other)
    assert [p[:2] for p in continued] == [p[:2] for p in reference]


def test_bounded_space_uses_log10_params(sqlite_url: str) -> None:
    spec = grid_study(tuner={"name": "tpe", "seed": 2}, budget=6)
    spec["space"] = {"alpha": {"low": 1e-5, "high": 1.0}, "eps": {"low": 1e-9, "high": 1e-1}}
    with TestClient(app_for(sqlite_url)) as client:
        sid = client.post("/api/studies", json=spec).json()["id"]
        assert drive(client, k=3) == 6
        page = client.get(f"/api/studies/{sid}/trials").json()["trials"]
    for trial in page:
        assert 1e-5 <= trial["alpha"] <= 1.0 and 1e-9 <= trial["eps"] <= 1e-1
        assert trial["i_alpha"] is None
