"""Attacks from a browser: writes from other sites' pages (CSRF, with or without a token) are
refused with 403, and Host names the server does not know (DNS rebinding) with 400; curl,
workers and the Python client, which send neither Origin nor Sec-Fetch-Site, go on."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient

from avatune.client import Client
from service.security import allowed_hosts, cross_site_reason, host_allowed, split_host
from service.settings import Settings
from tests.service.helpers import ThreadServer, app_for, drive, grid_study

TOKEN = "s3cret-token-value"
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
CROSS_SITE = [
    pytest.param(EVIL, id="origin-and-fetch-site"),
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="fetch-site-only"),
    pytest.param({"Origin": "https://evil.example"}, id="origin-only"),
    pytest.param({"Origin": "null"}, id="opaque-origin"),
    pytest.param({"Origin": "http://testserver:8001"}, id="same-host-other-port"),
    pytest.param({"Origin": "http://testserver.evil.example"}, id="longer-host"),
    pytest.param(
        {"Origin": "http://127.0.0.1:5555", "Sec-Fetch-Site": "same-site"}, id="same-site"
    ),
]
OWN_PAGE = [
    pytest.param({}, id="no-headers"),
    pytest.param(
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}, id="same-origin"
    ),
    pytest.param({"Origin": "http://TestServer:80"}, id="default-port-spelled-out"),
    pytest.param({"Sec-Fetch-Site": "none"}, id="typed-in"),
    pytest.param({"Origin": "https://testserver"}, id="behind-a-tls-proxy"),
]


def _study(client: TestClient, headers: dict[str, str] | None = None) -> int:
    response = client.post("/api/studies", json=grid_study(), headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _state(client: TestClient, study_id: int) -> str:
    return str(client.get(f"/api/studies/{study_id}").json()["state"])


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize("action", ["cancel", "pause"])
def test_cross_site_bodyless_posts_are_refused(
    database_url: str, headers: dict[str, str], action: str
) -> None:
    with TestClient(app_for(database_url)) as client:
        study_id = _study(client)
        response = client.post(f"/api/studies/{study_id}/{action}", headers=headers)
        assert response.status_code == 403, response.text
        assert "another site" in response.json()["detail"]
        assert _state(client, study_id) == "running"


def test_cross_site_writes_are_refused_even_with_the_token(database_url: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app_for(database_url, token=TOKEN)) as client:
        study_id = _study(client, auth)
        for method, path in [
            ("POST", f"/api/studies/{study_id}/cancel"),
            ("DELETE", f"/api/studies/{study_id}"),
            ("POST", "/api/studies"),
            ("POST", f"/studies/{study_id}/actions/cancel"),
            ("POST", "/studies/new"),
            ("PUT", f"/api/studies/{study_id}"),
            ("PATCH", f"/api/studies/{study_id}"),
        ]:
            response = client.request(method, path, headers={**auth, **EVIL}, json={})
            assert response.status_code == 403, (method, path, response.text)
        assert _state(client, study_id) == "running"
        resumed = client.post(f"/api/studies/{study_id}/pause", headers=auth)
        assert resumed.status_code == 200  # the same write, from no page, goes on


@pytest.mark.parametrize("headers", OWN_PAGE)
def test_writes_from_the_own_origin_or_no_page_go_on(
    database_url: str, headers: dict[str, str]
) -> None:
    with TestClient(app_for(database_url)) as client:
        study_id = _study(client, headers)
        response = client.post(f"/api/studies/{study_id}/cancel", headers=headers)
        assert response.status_code == 200, response.text
        assert _state(client, study_id) == "cancelled"


def test_cross_site_reads_are_answered(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url)) as client:
        assert client.get("/api/studies", headers=EVIL).status_code == 200
        assert client.get("/", headers=EVIL).status_code == 200


def test_a_rebinding_host_cannot_delete(database_url: str) -> None:
    with TestClient(app_for(database_url)) as client:
        study_id = _study(client)
        rebind = {"Host": "rebind.evil.example:8000"}
        response = client.delete(f"/api/studies/{study_id}", headers=rebind)
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert "AVATUNE_ALLOWED_HOSTS=rebind.evil.example" in detail
        assert client.get(f"/api/studies/{study_id}", headers=rebind).status_code == 400
        assert client.get("/", headers=rebind).status_code == 400
        assert _state(client, study_id) == "running"


@pytest.mark.parametrize(
    "host",
    ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "app.localhost", "LOCALHOST.", "localhost"],
)
def test_localhost_names_are_always_allowed(sqlite_url: str, host: str) -> None:
    with TestClient(app_for(sqlite_url, allowed_hosts=[])) as client:
        assert client.get("/healthz", headers={"Host": host}).status_code == 200
        assert client.get("/healthz").status_code == 400  # "testserver" is not one of them


def test_a_superscript_port_is_a_4xx_or_answered_never_a_5xx(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url, allowed_hosts=[])) as client:
        for host in ("localhost:\u00b2", "evil.example:\u00b2", "[::1]:\u00b2"):
            latin1 = {"Host": host.encode("latin-1")}  # a header may carry any Latin-1 byte
            assert client.get("/healthz", headers=latin1).status_code < 500
        origin = {"Host": b"localhost:8000", "Origin": "http://localhost:\u00b2".encode("latin-1")}
        assert client.post("/api/studies/1/cancel", headers=origin).status_code == 403


def test_the_bound_address_and_this_machines_name_are_allowed(sqlite_url: str) -> None:
    app = app_for(sqlite_url, allowed_hosts=[], host="10.1.2.3")
    with TestClient(app) as client:
        assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
        name = socket.gethostname()
        assert client.get("/healthz", headers={"Host": f"{name}:8000"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "other-box:8000"}).status_code == 400
        # an address is no rebinding target (that needs a name): a LAN IP works unconfigured
        assert client.get("/healthz", headers={"Host": "192.168.1.5:8000"}).status_code == 200


def test_allowed_hosts_from_the_environment(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVATUNE_ALLOWED_HOSTS", " api, *.gpu.lan ,Box:8000")
    settings = Settings(database_url=sqlite_url)
    assert settings.allowed_hosts == ["api", "*.gpu.lan", "Box:8000"]
    from service.app import create_app

    with TestClient(create_app(settings)) as client:
        for host in ("api:8000", "node1.gpu.lan", "box", "localhost"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        assert client.get("/healthz", headers={"Host": "gpu.lan.evil"}).status_code == 400


def test_a_star_allows_any_host(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url, allowed_hosts=["*"])) as client:
        study_id = _study(client, {"Host": "whatever.example"})
        assert client.get(f"/api/studies/{study_id}", headers={"Host": "x.y"}).status_code == 200
        still = client.post(f"/api/studies/{study_id}/cancel", headers={"Host": "x.y", **EVIL})
        assert still.status_code == 403  # any host, still no cross-site writes


def test_the_python_client_and_workers_keep_working(sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url)) as server, Client(server.url) as client:
        study = client.create_study(grid_study(n_alpha=2, n_eps=2))
        assert client.pause_study(study.id).state == "paused"
        assert client.resume_study(study.id).state == "running"
        assert client.cancel_study(study.id).state == "cancelled"
        client.delete_study(study.id)


def test_workers_lease_and_report(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url)) as client:
        _study(client)
        assert drive(client, k=3) == 9


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localhost:8000", ("localhost", 8000)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("Example.COM.", ("example.com", None)),
        ("host:notaport", ("host", None)),
        ("host:\u00b2", ("host", None)),  # '²'.isdigit() is True, int('²') fails
        ("[::1]:\u00b2", ("::1", None)),
    ],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),
        ({"host": "a:1", "origin": "http://a:1"}, False),
        ({"host": "a", "origin": "http://a:80"}, False),
        ({"host": "a:1", "origin": "http://a:2"}, True),
        ({"host": "a:1", "origin": "http://b:1"}, True),
        ({"host": "a", "origin": "http://a:99999"}, True),
        ({"host": "a", "origin": "garbage"}, True),
        ({"sec-fetch-site": "same-site"}, False),
        ({"sec-fetch-site": "CROSS-SITE"}, True),
    ],
)
def test_cross_site_reason(headers: dict[str, Any], refused: bool) -> None:
    assert (cross_site_reason(headers) is not None) is refused


def test_host_allowlist_patterns() -> None:
    allowed = allowed_hosts("0.0.0.0", ["*.lan"])
    assert allowed is not None and "0.0.0.0" not in allowed
    assert host_allowed("x.lan:1", allowed) and host_allowed("a.b.localhost", allowed)
    assert not host_allowed("lan", allowed) and not host_allowed("x.lan.evil:8000", allowed)
    assert host_allowed("0.0.0.0:8000", allowed) and host_allowed("[fe80::1]", allowed)
    assert allowed_hosts("127.0.0.1", ["*"]) is None and host_allowed("any", None)
