"""`AVATUNE_PROTECT_READS`: every GET of the API and dashboard (and /metrics) needs the token;
the dashboard logs in at /login (an HttpOnly, SameSite=Strict cookie); /healthz, /login,
/static and the API docs stay open; the Python client and workers go on working."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from avatune.client import Client
from avatune.errors import Unauthorized
from service import dashboard
from service.dashboard.templating import PLOTLY_PATH
from service.settings import SettingsError, load_settings
from tests.service.helpers import (
    ROOT,
    ServerProcess,
    ThreadServer,
    _env,
    app_for,
    grid_study,
    start_worker,
    wait_until,
)

TOKEN = "tok-protect-reads"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: GETs that stay open: liveness, the login page, assets and the API's docs.
OPEN = {"/healthz", "/login", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
OPEN.add(PLOTLY_PATH)
PAGE = {"Accept": "text/html,application/xhtml+xml"}
EXPERIMENT = {
    "name": "exp",
    "task": "mnist1d-mlp",
    "optimizers": ["adam", "avagrad"],
    "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8, 1e-4]},
    "fidelity": {"steps": 5},
}


@pytest.fixture
def protected(database_url: str) -> Iterator[tuple[TestClient, dict[str, int]]]:
    """A client of a server that protects reads, with a study and an experiment in it."""
    app = app_for(database_url, token=TOKEN, protect_reads=True)
    with TestClient(app) as client:
        sid = client.post("/api/studies", json=grid_study(), headers=BEARER).json()["id"]
        eid = client.post("/api/experiments", json=EXPERIMENT, headers=BEARER).json()["id"]
        yield client, {"study_id": sid, "experiment_id": eid, "trial_id": 1}


def _gets(client: TestClient, ids: dict[str, int]) -> list[str]:
    """Every GET route, path parameters filled in: the API's from its OpenAPI schema, the
    dashboard's (left out of it) from each dashboard module's router."""
    paths = [
        path
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        if "get" in operations
    ]
    for info in pkgutil.iter_modules(dashboard.__path__):
        router = getattr(importlib.import_module(f"service.dashboard.{info.name}"), "router", None)
        if isinstance(router, APIRouter):
            paths += [
                r.path for r in router.routes if isinstance(r, APIRoute) and "GET" in r.methods
            ]
    return [re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m[1], 1)), path) for path in paths]


def test_protect_reads_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVATUNE_TOKEN", raising=False)
    with pytest.raises(SettingsError, match="protect_reads: needs a token"):
        load_settings(protect_reads=True)
    monkeypatch.setenv("AVATUNE_PROTECT_READS", "1")
    with pytest.raises(SettingsError, match="AVATUNE_PROTECT_READS: needs a token"):
        load_settings()
    monkeypatch.setenv("AVATUNE_TOKEN", "")
    with pytest.raises(SettingsError, match="set AVATUNE_TOKEN"):
        load_settings()
    monkeypatch.delenv("AVATUNE_PROTECT_READS")
    assert load_settings(protect_reads=True, token=TOKEN).protect_reads
    assert not load_settings(token=TOKEN).protect_reads


def test_serve_refuses_protected_reads_without_a_token(sqlite_url: str) -> None:
    env = _env({"AVATUNE_PROTECT_READS": "1"})
    env.pop("AVATUNE_TOKEN", None)
    command = [sys.executable, "-m", "service", "serve", "--db", sqlite_url]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 2
    assert b"AVATUNE_PROTECT_READS" in done.stderr + done.stdout
    assert b"AVATUNE_TOKEN" in done.stderr + done.stdout


def test_every_get_needs_the_token(protected: tuple[TestClient, dict[str, int]]) -> None:
    client, ids = protected
    paths = _gets(client, ids)
    guarded = [p for p in paths if p not in OPEN]
    assert {"/", "/metrics", "/api/workers", f"/api/studies/{ids['study_id']}/export.json"} <= set(
        guarded
    )
    for path in guarded:
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer", path
        wrong = client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, path
        allowed = client.get(path, headers=BEARER)
        assert allowed.status_code not in (401, 403), (path, allowed.text)
    for path in OPEN & set(paths) | {"/static/dashboard.css"}:
        assert client.get(path).status_code == 200, path
    export = client.get(f"/api/studies/{ids['study_id']}/export.json", headers=BEARER)
    assert len(export.json()["trainings"]) == 9
    metrics = client.get("/metrics", headers=BEARER)
    assert "avatune" in metrics.text


def test_reads_stay_open_without_protect_reads(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url, token=TOKEN)) as client:
        sid = client.post("/api/studies", json=grid_study(), headers=BEARER).json()["id"]
        for path in ("/", "/metrics", "/api/studies", f"/api/studies/{sid}/export.csv"):
            assert client.get(path).status_code == 200, path
        assert client.post("/api/studies", json=grid_study()).status_code == 401


def test_dashboard_logs_in_with_a_cookie(protected: tuple[TestClient, dict[str, int]]) -> None:
    client, ids = protected
    sid = ids["study_id"]
    page = client.get(f"/studies/{sid}?x=1", headers=PAGE, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=%2Fstudies%2F{sid}%3Fx%3D1"
    form = client.get(page.headers["location"])
    assert form.status_code == 200 and 'name="token"' in form.text
    assert f'value="/studies/{sid}?x=1"' in form.text
    data = client.get("/partials/overview", headers={"X-Requested-With": "avatune", **PAGE})
    assert data.status_code == 401  # the page's scripts get an answer, not a login page
    wrong = client.post("/login", data={"token": "nope", "next": "/"}, follow_redirects=False)
    assert wrong.status_code == 403 and "wrong token" in wrong.text
    assert "set-cookie" not in wrong.headers and not client.cookies
    elsewhere = client.post(
        "/login",
        data={"token": TOKEN},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 403 and not client.cookies
    login = client.post(
        "/login", data={"token": TOKEN, "next": f"/studies/{sid}"}, follow_redirects=False
    )
    assert login.status_code == 303 and login.headers["location"] == f"/studies/{sid}"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    for path in ("/", f"/studies/{sid}", f"/experiments/{ids['experiment_id']}", "/workers"):
        assert client.get(path, headers=PAGE).status_code == 200, path
    assert client.get(f"/api/studies/{sid}/export.csv").status_code == 200  # its links
    assert client.get("/metrics").status_code == 200
    paused = client.post(f"/studies/{sid}/actions/pause")  # the buttons take the cookie
    assert paused.status_code == 200, paused.text
    assert client.post("/api/studies", json=grid_study()).status_code == 401  # the API: bearer


def test_login_goes_back_only_to_this_server(
    protected: tuple[TestClient, dict[str, int]],
) -> None:
    client, _ = protected
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "x"):
        response = client.post(
            "/login", data={"token": TOKEN, "next": target}, follow_redirects=False
        )
        assert response.status_code == 303 and response.headers["location"] == "/", target
    assert client.post("/login", data={"next": "/"}).status_code == 401


@pytest.fixture
def protected_server(sqlite_url: str) -> Iterator[ThreadServer]:
    app = app_for(sqlite_url, token=TOKEN, protect_reads=True)
    with ThreadServer(app) as running:
        yield running


def test_the_python_client_sends_its_token(protected_server: ThreadServer) -> None:
    with Client(protected_server.url, TOKEN) as client:
        study = client.create_study(grid_study(n_alpha=2, n_eps=2))
        assert client.study(study).id == study.id
        assert [s.id for s in client.studies()] == [study.id]
        assert client.export(study).study.id == study.id
        assert client.export_csv(study).startswith("training,")
        assert client.workers() == []
        assert client.health().status == "ok"
    with Client(protected_server.url, token="") as anonymous:
        assert anonymous.health().status == "ok"
        with pytest.raises(Unauthorized):
            anonymous.studies()


def test_workers_train_under_protected_reads(sqlite_url: str) -> None:
    env = {"AVATUNE_TOKEN": TOKEN, "AVATUNE_PROTECT_READS": "true"}
    with ServerProcess(sqlite_url, env=env) as server:
        study: Any = httpx.post(
            f"{server.url}/api/studies", json=grid_study(n_alpha=2, n_eps=2), headers=BEARER
        ).json()
        path = f"{server.url}/api/studies/{study['id']}"
        assert httpx.get(path).status_code == 401
        worker = start_worker(server.url, env={"AVATUNE_TOKEN": TOKEN})
        try:
            assert wait_until(lambda: httpx.get(path, headers=BEARER).json()["state"] == "done", 60)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        workers = httpx.get(f"{server.url}/api/workers", headers=BEARER).json()
        assert len(workers) == 1
