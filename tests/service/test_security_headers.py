"""Every response carries the headers that stop framing (clickjacking), MIME sniffing and
referrer leaks, and pages a CSP that runs only the server's own scripts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.security import DOCS_CSP, PAGE_CSP
from tests.service.helpers import app_for, grid_study

TOKEN = "s3cret-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    """A client of a server with a token and one study."""
    with TestClient(app_for(sqlite_url, token=TOKEN), raise_server_exceptions=False) as client:
        assert client.post("/api/studies", json=grid_study(), headers=AUTH).status_code == 201
        yield client


def directives(policy: str) -> dict[str, list[str]]:
    """A CSP as {directive: sources}."""
    parts = (item.split() for item in policy.split(";") if item.strip())
    return {name: sources for name, *sources in parts}


def assert_protected(response: object, policy: str = PAGE_CSP) -> None:
    """The four headers, with `policy` as the CSP."""
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == policy, response
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_the_page_policy_allows_only_own_scripts_and_no_framing() -> None:
    csp = directives(PAGE_CSP)
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert directives(DOCS_CSP)["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize(
    "path", ["/", "/workers", "/studies/1", "/studies/new", "/experiments/new", "/studies/1/trials"]
)
def test_dashboard_pages(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, path
    assert_protected(response)


def test_pages_run_no_inline_scripts(client: TestClient) -> None:
    for path in ("/", "/workers", "/studies/1", "/studies/new", "/experiments/new"):
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\son[a-z]+=", html), f"{path} has an inline event handler"


@pytest.mark.parametrize(
    "path", ["/api/studies", "/api/studies/1", "/healthz", "/metrics", "/openapi.json"]
)
def test_api_responses(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, path
    assert_protected(response)


def test_static_files_and_plotly(client: TestClient) -> None:
    for path in ("/static/dashboard.css", "/static/dashboard.js", "/vendor/plotly.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_protected(response)
        kind = "text/css" if path.endswith(".css") else "text/javascript"
        assert response.headers["content-type"].startswith(kind), path  # nosniff needs it
    etag = client.get("/vendor/plotly.min.js").headers["etag"]
    assert_protected(client.get("/vendor/plotly.min.js", headers={"If-None-Match": etag}))


def test_errors(client: TestClient) -> None:
    cases = [
        (client.get("/nowhere"), 404),
        (client.get("/api/studies/99"), 404),
        (client.get("/studies/99"), 404),
        (client.post("/api/studies", json={"name": 1}, headers=AUTH), 422),
        (client.post("/api/studies/1/cancel"), 401),
        (client.post("/api/studies/1/cancel", headers={**AUTH, "Origin": "http://x"}), 403),
        (client.get("/healthz", headers={"Host": "rebind.example"}), 400),
        (client.put("/api/studies/1", headers=AUTH), 405),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert_protected(response)


def test_the_api_docs_get_a_policy_that_lets_swagger_load(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_protected(response, DOCS_CSP)
    csp = directives(DOCS_CSP)
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        for source in re.findall(r'<script src="(https://[^/"]+)', html):
            assert source in csp["script-src"], (path, source)
        sheets = [tag for tag in re.findall(r"<link\b[^>]*>", html) if "stylesheet" in tag]
        assert sheets, path
        for tag in sheets:
            found = re.search(r'href="(https://[^/"]+)', tag)
            assert found is not None and found.group(1) in csp["style-src"], (path, tag)
