"""Per-seed results on SQLite and PostgreSQL: stored per trial, shown, exported, and made
into version-2 grid tables (a diverged seed at chance for that seed only)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import reports
from studies.table import FORMAT, GridTable
from tests.service.helpers import app_for, grid_study, wait_until

CHANCE = 90.0
#: The cell (i_alpha, j_eps) whose second seed diverges.
DIVERGED_CELL = (1, 0)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(database_url)) as test_client:
        yield test_client


def seeded(trial: dict[str, Any], ij: tuple[int, int]) -> dict[str, Any]:
    """Three seeds per trial, the second of `DIVERGED_CELL` diverged (its value at chance)."""
    i, j = ij
    values = [10.0 + i + j, 20.0 + i + j, 30.0 + i + j]
    tests = [v + 1 for v in values]
    flags = [False, False, False]
    if ij == DIVERGED_CELL:
        values[1] = tests[1] = CHANCE
        flags[1] = True
    return {
        "value": sum(values) / 3,
        "test_value": sum(tests) / 3,
        "diverged": any(flags),
        "seed_values": values,
        "seed_test_values": tests,
        "seed_diverged": flags,
        "chance": CHANCE,
    }


def drive(client: TestClient, result: Callable[[dict[str, Any], tuple[int, int]], dict]) -> None:
    """Lease and report every trial, the body of each result from `result(trial, (i, j))`."""
    while True:
        lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 4}).json()
        if not lease["trials"]:
            return
        for trial in lease["trials"]:
            sid = trial["study_id"]
            shown = client.get(f"/api/studies/{sid}/trials", params={"limit": 5000}).json()
            row = next(t for t in shown["trials"] if t["id"] == trial["trial_id"])
            body = {"token": lease["token"], **result(trial, (row["i_alpha"], row["j_eps"]))}
            response = client.post(f"/api/trials/{trial['trial_id']}/result", json=body)
            assert response.status_code == 200, response.text


def experiment(client: TestClient, seeds: int) -> dict[str, Any]:
    spec = {
        "name": "seeds",
        "task": "mnist1d-mlp",
        "optimizers": ["adam"],
        "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8, 1e-4, 1.0]},
        "fidelity": {"steps": 5, "seeds": seeds},
        "replay": {"tuners": ["random"], "seeds": 2},
    }
    response = client.post("/api/experiments", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def report_tables(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, eid: int
) -> tuple[list[GridTable], list[dict[str, Any]]]:
    """The tables the report was computed from, and the tables the report returns."""
    seen: list[GridTable] = []

    def fake_metrics(spec: object, tables: list[GridTable], out_dir: object) -> dict:
        seen.extend(tables)
        return {}

    monkeypatch.setattr(reports, "build_metrics", fake_metrics)
    path = f"/api/experiments/{eid}/report"
    assert wait_until(lambda: client.get(path).status_code == 200, 30)
    return seen, client.get(path).json()["tables"]


def test_per_seed_results_are_stored_exported_and_tabled(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = experiment(client, seeds=3)
    sid = made["studies"][0]["id"]
    drive(client, seeded)
    trials = client.get(f"/api/studies/{sid}/trials").json()["trials"]
    by_cell = {(t["i_alpha"], t["j_eps"]): t for t in trials}
    hit = by_cell[DIVERGED_CELL]
    assert hit["seed_values"] == [11.0, CHANCE, 31.0]
    assert hit["seed_test_values"] == [12.0, CHANCE, 32.0]
    assert hit["seed_diverged"] == [False, True, False]
    assert hit["state"] == "diverged" and hit["diverged"] and hit["chance"] == CHANCE
    assert hit["value"] == pytest.approx((11 + CHANCE + 31) / 3)
    assert by_cell[0, 2]["seed_values"] == [12.0, 22.0, 32.0]
    assert by_cell[0, 2]["state"] == "complete"

    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/studies/{sid}/export.csv").text)))
    row = next(r for r in rows if r["number"] == str(hit["number"]))
    assert json.loads(row["seed_values"]) == [11.0, CHANCE, 31.0]
    assert json.loads(row["seed_diverged"]) == [False, True, False]
    assert float(row["chance"]) == CHANCE
    exported = client.get(f"/api/studies/{sid}/export.json").json()["trainings"]
    assert {tuple(t["seed_values"]) for t in exported} == {tuple(t["seed_values"]) for t in trials}

    (table,), (returned,) = report_tables(client, monkeypatch, made["id"])
    assert table.format == returned["format"] == FORMAT
    assert table.seeds == returned["seeds"] == 3 and table.chance == CHANCE
    i, j = DIVERGED_CELL
    # the diverged seed is at chance for that seed only; the other seeds keep their values
    assert [table.error_seeds[s][i][j] for s in range(3)] == [11.0, CHANCE, 31.0]
    assert [table.diverged_seeds[s][i][j] for s in range(3)] == [False, True, False]
    assert table.diverged[i][j] and not table.diverged[0][0]
    assert table.error[i][j] == pytest.approx((11 + CHANCE + 31) / 3)
    assert [table.error_seeds[s][0][1] for s in range(3)] == [11.0, 21.0, 31.0]
    assert table.test_error_seeds is not None and table.test_error_seeds[2][0][1] == 32.0
    assert GridTable.model_validate(returned) == table


def test_results_without_seed_values_make_one_seed_tables(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What older workers send: one value per trial, however many seeds it averaged."""
    made = experiment(client, seeds=3)

    def plain(trial: dict[str, Any], ij: tuple[int, int]) -> dict[str, Any]:
        if ij == DIVERGED_CELL:
            return {"value": CHANCE, "diverged": True}
        return {"value": 10.0 + ij[0] + ij[1], "test_value": 5.0}

    drive(client, plain)
    trials = client.get(f"/api/studies/{made['studies'][0]['id']}/trials").json()["trials"]
    assert all(t["seed_values"] is None and t["chance"] is None for t in trials)
    (table,), _ = report_tables(client, monkeypatch, made["id"])
    assert table.format == FORMAT and table.seeds == 1
    assert table.chance == CHANCE  # inferred from the diverged trial
    assert table.error_seeds == [table.error] and table.error[0][1] == 11.0
    assert table.diverged == table.diverged_seeds[0] and table.diverged[1][0]
    assert table.test_error is None  # the diverged trial sent no test value


def test_inconsistent_seed_values_are_refused(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=1, n_eps=1))
    lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 1}).json()
    path = f"/api/trials/{lease['trials'][0]['trial_id']}/result"
    base = {"token": lease["token"], "value": 2.0, "seed_values": [1.0, 3.0]}
    cases = [
        ({"seed_diverged": [False]}, "one per seed"),
        ({"seed_values": [1.0, 5.0]}, "mean of seed_values"),
        ({"seed_values": [1.7e308, 1.7e308]}, "mean of seed_values"),  # no overflow: a 422
        ({"seed_values": [2.0] * 17}, "at most 16"),
        ({"seed_values": None, "seed_diverged": [False]}, "need seed_values"),
        ({"diverged": True}, "needs seed_diverged"),
        ({"seed_diverged": [False, True]}, "diverged must be true"),
    ]
    for change, message in cases:
        refused = client.post(path, json=base | change)
        assert refused.status_code == 422 and message in refused.text, (change, refused.text)
    assert client.post(path, json=base).status_code == 200  # still leased: nothing was stored
    trial = client.get("/api/studies/1/trials").json()["trials"][0]
    assert trial["seed_values"] == [1.0, 3.0] and trial["seed_diverged"] is None


def test_a_point_asked_again_copies_the_seed_values(client: TestClient) -> None:
    spec = grid_study(n_alpha=3, n_eps=3, tuner={"name": "gld", "seed": 1}, budget=9)
    sid = client.post("/api/studies", json=spec).json()["id"]
    drive(client, seeded)
    trials = client.get(
        f"/api/studies/{sid}/trials", params={"limit": 5000, "repeats": True}
    ).json()["trials"]
    by_id = {t["id"]: t for t in trials}
    copies = [t for t in trials if t["source_trial_id"] is not None]
    assert copies, "GLD on a 3×3 grid revisits points"
    for copy in copies:
        original = by_id[copy["source_trial_id"]]
        for key in ("seed_values", "seed_test_values", "seed_diverged", "chance"):
            assert copy[key] == original[key] is not None
