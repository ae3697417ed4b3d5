"""Tuners run on the server with their state in the database only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.fake_training import objective
from tests.service.helpers import app_for, drive, grid_study

TUNERS = ("random", "tpe", "cmaes", "gld", "cgld")


def _points(client: TestClient, study_id: int) -> list[tuple[float, float, str, int | None]]:
    params = {"limit": 5000, "repeats": True}
    page = client.get(f"/api/studies/{study_id}/trials", params=params).json()
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
    assert trained == study["trainings_proposed"]
    assert study["trainings_proposed"] == 12 or study["stop_reason"]
    points = _points(client, sid)
    originals = [(a, e) for a, e, _, source in points if source is None]
    assert len(originals) == len(set(originals)) == study["trainings_proposed"]
    assert study["best"]["value"] == min(objective(a, e) for a, e in originals)


def test_a_point_asked_again_gets_the_stored_result(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url)) as client:
        spec = grid_study(n_alpha=3, n_eps=3, tuner={"name": "gld", "seed": 1}, budget=9)
        sid = client.post("/api/studies", json=spec).json()["id"]
        trained = drive(client)
        params = {"limit": 5000, "repeats": True}
        page = client.get(f"/api/studies/{sid}/trials", params=params).json()
        trainings = client.get(f"/api/studies/{sid}/trials", params={"limit": 5000}).json()
        study = client.get(f"/api/studies/{sid}").json()
        exported = client.get(f"/api/studies/{sid}/export.json").json()
        csv_rows = client.get(f"/api/studies/{sid}/export.csv").text.splitlines()
    by_id = {t["id"]: t for t in page["trials"]}
    copies = [t for t in page["trials"] if t["source_trial_id"] is not None]
    assert trained == 9 and copies, "GLD on a 3×3 grid revisits points"
    for copy in copies:
        original = by_id[copy["source_trial_id"]]
        assert (copy["alpha"], copy["eps"]) == (original["alpha"], original["eps"])
        assert copy["value"] == original["value"] and copy["state"] == "complete"
        assert copy["worker_id"] is None  # never leased, never trained
        assert copy["training"] is None
    # what users see: trainings, each with its count of repeat asks
    listed = trainings["trials"]
    assert [t["training"] for t in listed] == list(range(9))
    assert sum(t["repeats"] for t in listed) == len(copies) == study["repeats"]
    assert study["trainings_done"] == study["trainings_budget"] == 9
    assert study["counts"] == {"complete": 9} and study["progress"] == 1.0
    assert len(exported["trainings"]) == 9 and len(exported["repeats"]) == len(copies)
    assert len(csv_rows) == 1 + 9 and csv_rows[0].startswith("training,number,repeats")


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


@pytest.mark.parametrize("tuner", ["grid", "tpe", "cgld"])
def test_sgd_studies_search_alpha_only(sqlite_url: str, tuner: str) -> None:
    """sgd ignores ε: its studies spend no budget on an ε axis (one ε per α)."""
    with TestClient(app_for(sqlite_url)) as client:
        too_big = grid_study(n_alpha=4, n_eps=5, tuner=tuner, optimizer="sgd", budget=5)
        refused = client.post("/api/studies", json=too_big)
        assert refused.status_code == 422 and "4 α values" in refused.text
        spec = grid_study(n_alpha=4, n_eps=5, tuner={"name": tuner, "seed": 2}, optimizer="sgd")
        sid = client.post("/api/studies", json=spec).json()["id"]
        drive(client, k=2)
        study = client.get(f"/api/studies/{sid}").json()
        trainings = client.get(f"/api/studies/{sid}/trials").json()["trials"]
    assert study["trainings_budget"] == 4 and study["state"] == "done"
    assert sorted(t["alpha"] for t in trainings) == spec["space"]["alphas"]
    assert {t["eps"] for t in trainings} == {spec["space"]["epsilons"][0]}


@pytest.mark.parametrize(
    ("tuner", "parallelism", "limit"),
    [("tpe", None, 1), ("tpe", 3, 3), ("cgld", None, 3), ("random", None, None)],
)
def test_in_flight_limits_bound_every_lease(
    sqlite_url: str, tuner: str, parallelism: int | None, limit: int | None
) -> None:
    """However many trials a worker asks for, a study hands out at most its limit."""
    spec = grid_study(n_alpha=6, n_eps=6, tuner={"name": tuner, "seed": 1}, budget=20)
    if parallelism is not None:
        spec["tuner"]["parallelism"] = parallelism
    with TestClient(app_for(sqlite_url)) as client:
        sid = client.post("/api/studies", json=spec).json()["id"]
        study = client.get(f"/api/studies/{sid}").json()
        assert study["in_flight_limit"] == limit
        got = client.post("/api/leases", json={"worker_id": "w", "max_trials": 64}).json()
        assert len(got["trials"]) == (limit or 20)
        again = client.post("/api/leases", json={"worker_id": "w", "max_trials": 64}).json()
        assert again["trials"] == [] or limit is None
        study = client.get(f"/api/studies/{sid}").json()
        assert study["trainings_in_flight"] == len(got["trials"])


def test_a_lease_fills_across_studies(sqlite_url: str) -> None:
    """Three TPE studies (limit 1 each) fill one worker's lease with three trainings."""
    with TestClient(app_for(sqlite_url)) as client:
        for seed in range(3):
            spec = grid_study(f"s{seed}", n_alpha=5, n_eps=5, tuner={"name": "tpe", "seed": seed})
            client.post("/api/studies", json=spec)
        got = client.post("/api/leases", json={"worker_id": "w", "max_trials": 8}).json()
    assert sorted(t["study_id"] for t in got["trials"]) == [1, 2, 3]


def test_grid_studies_refuse_a_parallelism(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url)) as client:
        spec = grid_study(tuner={"name": "grid", "seed": 0, "parallelism": 2})
        refused = client.post("/api/studies", json=spec)
    assert refused.status_code == 422 and "remove tuner.parallelism" in refused.text
