"""Bad input on every route is a 4xx with a message, never a 5xx; auth when a token is set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.helpers import app_for, grid_study

EPS_BOUNDS = {"low": 1e-8, "high": 1}
NAN_BODY = '{"token": "%s", "value": NaN}'


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(sqlite_url, max_body_bytes=64 * 1024)) as test_client:
        yield test_client


@pytest.fixture
def leased(client: TestClient) -> dict[str, Any]:
    client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=2))
    return client.post("/api/leases", json={"worker_id": "w", "max_trials": 2}).json()


def _study(**changes: Any) -> dict[str, Any]:
    spec = grid_study()
    for key, value in changes.items():
        spec[key] = value
    return spec


BAD_STUDIES = {
    "unknown task": (_study(task="imagenet"), "unknown task 'imagenet'"),
    "unknown optimizer": (_study(optimizer="adm"), "unknown optimizer 'adm'"),
    "unknown tuner": (_study(tuner="bayes"), "unknown tuner 'bayes'"),
    "alpha zero": (_study(space={"alphas": [0.0, 1.0], "epsilons": [1e-8]}), "must be > 0"),
    "eps negative": (_study(space={"alphas": [1.0], "epsilons": [-1e-8]}), "must be > 0"),
    "inverted bounds": (
        _study(tuner="tpe", space={"alpha": {"low": 1, "high": 1e-3}, "eps": EPS_BOUNDS}),
        "inverted",
    ),
    "budget over grid": (_study(budget=100), "exceeds the 9 points"),
    "budget too large": (_study(tuner="tpe", budget=10**6), "less than or equal"),
    "grid too large": (
        _study(
            space={
                "alphas": [float(i + 1) for i in range(200)],
                "epsilons": [float(i + 1) for i in range(200)],
            }
        ),
        "grid too large",
    ),
    "unsorted grid": (_study(space={"alphas": [1.0, 0.1], "epsilons": [1.0]}), "increasing"),
    "two space forms": (_study(space={"grid": "paper", "alphas": [1.0]}), "exactly one"),
    "grid tuner on bounds": (
        _study(space={"alpha": {"low": 1e-4, "high": 1}, "eps": {"low": 1e-8, "high": 1}}),
        "grid tuner needs a grid",
    ),
    "wrong type": (_study(budget="many"), "integer"),
    "bad tuner config": (_study(tuner={"name": "tpe", "config": {"bogus": 1}}), "bogus"),
    "missing name": ({"task": "mnist1d-mlp", "optimizer": "adam"}, "name"),
    "extra field": (_study(colour="red"), "Extra inputs"),
    "betas out of range": (_study(optimizer={"name": "adam", "betas": [0.9, 1.5]}), "[0, 1)"),
}


@pytest.mark.parametrize("case", list(BAD_STUDIES))
def test_bad_study_specs(client: TestClient, case: str) -> None:
    body, message = BAD_STUDIES[case]
    response = client.post("/api/studies", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text


def test_bad_experiment_specs(client: TestClient) -> None:
    base = {"name": "e", "task": "mnist1d-mlp", "optimizers": ["adam", "adam"]}
    response = client.post("/api/experiments", json=base)
    assert response.status_code == 422 and "once" in response.text
    response = client.post("/api/experiments", json=base | {"optimizers": ["adam", "sgdd"]})
    assert response.status_code == 422 and "unknown optimizer" in response.text
    bounds = {"alpha": {"low": 1e-3, "high": 1}, "eps": {"low": 1e-8, "high": 1}}
    body = base | {"optimizers": ["adam"], "space": bounds}
    response = client.post("/api/experiments", json=body)
    assert response.status_code == 422 and "grid space" in response.text


def test_bad_results(client: TestClient, leased: dict[str, Any]) -> None:
    trial_id, token = leased["trials"][0]["trial_id"], leased["token"]
    path = f"/api/trials/{trial_id}/result"
    nan = client.post(path, content=NAN_BODY % token, headers={"Content-Type": "application/json"})
    assert nan.status_code == 422 and "finite" in nan.text
    inf = client.post(
        path,
        content=NAN_BODY.replace("NaN", "Infinity") % token,
        headers={"Content-Type": "application/json"},
    )
    assert inf.status_code == 422
    curve = client.post(path, json={"token": token, "value": 1.0, "curve": [1.0] * 1001})
    assert curve.status_code == 422 and "1000" in curve.text
    bad_curve = client.post(
        path,
        content=f'{{"token": "{token}", "value": 1, "curve": [1, NaN]}}',
        headers={"Content-Type": "application/json"},
    )
    assert bad_curve.status_code == 422
    assert client.post(path, json={"token": token, "value": "low"}).status_code == 422
    assert client.post(path, json={"token": "short", "value": 1.0}).status_code == 422
    wrong = client.post(path, json={"token": "x" * 32, "value": 1.0})
    assert wrong.status_code == 409 and "not leased under this token" in wrong.text
    huge = client.post(path, json={"token": token, "value": 1.0, "curve": [], "pad": "x" * 70_000})
    assert huge.status_code == 413 and "too large" in huge.text
    assert client.post(path, json={"token": token, "value": 1.0}).status_code == 200
    again = client.post(path, json={"token": token, "value": 1.0})
    assert again.status_code == 409


def test_bad_ids_and_queries(client: TestClient) -> None:
    assert client.get("/api/studies/0").status_code == 422
    assert client.get(f"/api/studies/{2**40}").status_code == 422
    assert client.get("/api/studies/abc").status_code == 422
    unknown = client.post("/api/trials/99/result", json={"token": "x" * 32, "value": 1})
    assert unknown.status_code == 404
    assert client.get("/api/studies", params={"state": "sleeping"}).status_code == 422
    client.post("/api/studies", json=grid_study())
    assert client.get("/api/studies/1/trials", params={"state": "lost"}).status_code == 422
    assert client.get("/api/studies/1/trials", params={"limit": 0}).status_code == 422
    assert client.post("/api/leases", json={"worker_id": "w", "max_trials": 0}).status_code == 422
    bad_worker = client.post("/api/leases", json={"worker_id": "bad id!", "max_trials": 1})
    assert bad_worker.status_code == 422
    assert (
        client.post(
            "/api/leases", content=b"not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )
    assert client.post("/api/studies/1/nap").status_code in (404, 405)


@pytest.fixture
def secured(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(sqlite_url, token="s3cret-token")) as test_client:
        yield test_client


def test_token_guards_mutations_and_the_worker_protocol(secured: TestClient) -> None:
    auth = {"Authorization": "Bearer s3cret-token"}
    wrong = {"Authorization": "Bearer nope"}
    missing = secured.post("/api/studies", json=grid_study())
    assert missing.status_code == 401 and "Bearer" in missing.json()["detail"]
    assert secured.post("/api/studies", json=grid_study(), headers=wrong).status_code == 403
    created = secured.post("/api/studies", json=grid_study(), headers=auth)
    assert created.status_code == 201
    sid = created.json()["id"]
    assert secured.get("/api/studies").status_code == 200  # reads are open
    assert secured.get(f"/api/studies/{sid}/export.csv").status_code == 200
    for path in (f"/api/studies/{sid}/pause", f"/api/studies/{sid}/cancel"):
        assert secured.post(path).status_code == 401
    assert secured.delete(f"/api/studies/{sid}").status_code == 401
    assert secured.post("/api/experiments", json={}).status_code == 401
    lease_body = {"worker_id": "w", "max_trials": 1}
    assert secured.post("/api/leases", json=lease_body).status_code == 401
    assert secured.post("/api/leases", json=lease_body, headers=wrong).status_code == 403
    lease = secured.post("/api/leases", json=lease_body, headers=auth).json()
    trial = lease["trials"][0]["trial_id"]
    result = {"token": lease["token"], "value": 1.0}
    for report in ("heartbeat", "result", "failure"):
        assert secured.post(f"/api/trials/{trial}/{report}", json=result).status_code == 401
    assert secured.post(f"/api/trials/{trial}/result", json=result, headers=auth).status_code == 200
