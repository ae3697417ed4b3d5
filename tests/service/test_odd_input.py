"""Odd input is a 4xx with a message, never a 500: lone surrogates, deep JSON, superscript
digits in the dashboard's query strings, and α bounds of zero width in log space."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.dashboard.landscape import Landscape
from service.dashboard.query_values import id_list, is_digits, positive_int
from service.errors import DEEP, MAX_ECHO_DEPTH, json_safe
from studies.space import MIN_BOUNDS_RATIO, Bounds
from tests.service.helpers import app_for, drive, grid_study

JSON = {"Content-Type": "application/json"}
SURROGATE = '"\\ud800"'  # JSON's escape of a lone surrogate: valid JSON, not valid Unicode
EPS_BOUNDS = {"low": 1e-8, "high": 1.0}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app = app_for(database_url, max_body_bytes=256 * 1024)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=2))
        yield test_client


def _post(client: TestClient, path: str, body: str) -> Any:
    return client.post(path, content=body.encode("ascii"), headers=JSON)


def _says_why(response: Any, status: int = 422) -> str:
    """The response's `detail` as text, after checking it is a 4xx of valid UTF-8 JSON."""
    assert response.status_code == status, response.text
    detail = json.loads(response.content.decode("utf-8"))["detail"]
    assert detail
    return json.dumps(detail, ensure_ascii=False)


def _with_surrogate(spec: dict[str, Any], *path: str | int) -> str:
    """`spec` as JSON with the value at `path` replaced by a lone surrogate."""
    marker = "SURROGATE-HERE"
    target: Any = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = marker
    return json.dumps(spec).replace(f'"{marker}"', SURROGATE)


SURROGATE_STUDIES = {
    "name": ("name",),
    "task name": ("task",),
    "optimizer name": ("optimizer",),
    "tuner name": ("tuner", "name"),
    "tuner option": ("tuner", "config", "width"),
    "alpha value": ("space", "alphas", 0),
    "budget": ("budget",),
}


@pytest.mark.parametrize("field", list(SURROGATE_STUDIES))
def test_a_lone_surrogate_in_a_study_spec_is_a_422(client: TestClient, field: str) -> None:
    spec = grid_study() | {"tuner": {"name": "random", "config": {}}, "budget": 2}
    text = _says_why(
        _post(client, "/api/studies", _with_surrogate(spec, *SURROGATE_STUDIES[field]))
    )
    assert "\\ud800" in text  # echoed as an escape, not as a character UTF-8 cannot hold


def test_a_lone_surrogate_says_it_is_not_unicode(client: TestClient) -> None:
    text = _says_why(_post(client, "/api/studies", _with_surrogate(grid_study(), "name")))
    assert "not valid Unicode" in text and "surrogate" in text
    key = _post(client, "/api/studies", json.dumps(grid_study())[:-1] + f", {SURROGATE}: 1}}")
    assert "not valid Unicode" in _says_why(key)


def test_a_lone_surrogate_elsewhere_is_a_4xx(client: TestClient) -> None:
    experiment = {"name": "e", "task": "mnist1d-mlp", "optimizers": ["adam"]}
    _says_why(_post(client, "/api/experiments", _with_surrogate(experiment, "name")))
    lease = {"worker_id": "w", "max_trials": 1}
    _says_why(_post(client, "/api/leases", _with_surrogate(lease, "worker_id")))
    leased = client.post("/api/leases", json=lease).json()
    path = f"/api/trials/{leased['trials'][0]['trial_id']}"
    report = {"token": leased["token"], "value": 1.0}
    _says_why(_post(client, f"{path}/result", _with_surrogate(report, "token")))
    failure = {"token": leased["token"], "error": "x"}
    _says_why(_post(client, f"{path}/failure", _with_surrogate(failure, "error")))
    # a query or path decodes %ED%A0%80 (a surrogate's UTF-8-style bytes) to U+FFFD: a 4xx
    for url in ("/api/studies/%ED%A0%80", "/api/studies?state=%ED%A0%80", "/studies/%ED%A0%80"):
        assert 400 <= client.get(url).status_code < 500, url
    assert client.get("/studies/1/data?after=%ED%A0%80").status_code == 422
    assert client.get("/studies/1/curves?curve=%ED%A0%80").status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/studies", "/api/experiments", "/api/leases", "/api/trials/1/result"]
)
@pytest.mark.parametrize("depth", [500, 5000])
def test_deeply_nested_json_is_a_4xx(client: TestClient, path: str, depth: int) -> None:
    objects = '{"a":' * depth + "1" + "}" * depth
    arrays = "[" * depth + "]" * depth
    for body in (objects, arrays):
        response = _post(client, path, body)
        assert response.status_code in (400, 422), response.text[:300]
        assert json.loads(response.text)["detail"]


def test_deep_json_inside_a_spec_is_echoed_only_so_deep(client: TestClient) -> None:
    spec = json.dumps(grid_study())[:-1] + ', "colour": ' + "[" * 500 + "]" * 500 + "}"
    text = _says_why(_post(client, "/api/studies", spec))
    assert "Extra inputs" in text and DEEP in text
    config = json.dumps(grid_study(tuner={"name": "random", "config": {}}))
    nested = config.replace('"config": {}', '"config": {"w": ' + '{"a":' * 500 + "1" + "}" * 501)
    assert "config" in _says_why(_post(client, "/api/studies", nested))


def test_json_safe_cuts_nesting_and_escapes_surrogates() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": deep}
    safe = json_safe(deep)
    for _ in range(MAX_ECHO_DEPTH):
        safe = safe["a"]
    assert safe == DEEP
    assert json_safe({"\ud800": ["x\udfff", math.nan, b"\xff", ValueError("v")]}) == {
        "\\ud800": ["x\\udfff", "nan", "\\xff", "v"]
    }


@pytest.mark.parametrize(
    "query",
    ["page=²", "page=¹²", "page=１", "page=٣", "curve=²", "curve=1,²,³", "curve=１２"],
)
def test_superscript_digits_on_the_study_page_mean_the_default(
    client: TestClient, query: str
) -> None:
    page = client.get(f"/studies/1?{query}")
    assert page.status_code == 200
    assert client.get(f"/studies/1/trials?{query}").status_code == 200
    curves = client.get(f"/studies/1/curves?{query}")
    assert curves.status_code == 200 and set(curves.json()["selected"]) <= {1}


def test_superscript_digits_elsewhere_are_a_422_with_a_message(client: TestClient) -> None:
    assert "integer" in _says_why(client.get("/?page=²"))
    assert "bad cursor" in _says_why(client.get("/studies/1/data?after=².1"))
    assert "bad cursor" in _says_why(client.get("/studies/1/data?after=1.²"))
    assert "integer" in _says_why(client.get("/api/studies/1/trials?limit=²"))


def test_query_values_take_ascii_digits_only() -> None:
    assert [is_digits(t, 3) for t in ("12", "", "1234", "²", "１", "-1", " 1", "1\n")] == [
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
    ]
    assert [positive_int(t, 1) for t in (None, "7", "0", "²", "9" * 7, "+3")] == [1, 7, 1, 1, 1, 1]
    assert id_list(["3,²,4", "3", " 5 ", "１"], 10) == [3, 4, 5]
    assert id_list(["1,2,3"], 2) == [1, 2]


def _bounds_study(low: float, high: float) -> dict[str, Any]:
    spec = grid_study(tuner={"name": "random", "seed": 1}, budget=3)
    spec["space"] = {"alpha": {"low": low, "high": high}, "eps": EPS_BOUNDS}
    return spec


@pytest.mark.parametrize(
    ("low", "high"),
    [(1e10, math.nextafter(1e10, math.inf)), (1e-3, 1.005e-3), (1e-300, 1.001e-300)],
)
def test_bounds_too_narrow_for_log_space_are_a_422(
    client: TestClient, low: float, high: float
) -> None:
    text = _says_why(client.post("/api/studies", json=_bounds_study(low, high)))
    assert "too narrow" in text and f"at least {MIN_BOUNDS_RATIO} × low" in text
    eps = _bounds_study(1e-3, 1.0)
    eps["space"]["eps"] = {"low": 1e-8, "high": math.nextafter(1e-8, 1.0)}
    assert "too narrow" in _says_why(client.post("/api/studies", json=eps))
    assert client.get("/api/studies").status_code == 200


def test_narrow_but_usable_bounds_make_a_study_whose_page_renders(client: TestClient) -> None:
    created = client.post("/api/studies", json=_bounds_study(1e-3, 1e-3 * MIN_BOUNDS_RATIO))
    assert created.status_code == 201, created.text
    assert drive(client) >= 3
    study = created.json()["id"]
    assert client.get(f"/studies/{study}").status_code == 200
    assert client.get(f"/studies/{study}/data").status_code == 200


def test_bounds_of_zero_log_width_neither_validate_nor_break_the_heatmap() -> None:
    with pytest.raises(ValueError, match="too narrow"):
        Bounds(low=1e10, high=math.nextafter(1e10, math.inf))
    log10 = math.log10(1e10)
    landscape = Landscape([1e10] * 3, [1e-8] * 3, ((log10, log10), (-8.0, 0.0)))
    row, column = landscape.cell(1e10, 1e-4)
    assert row == 0 and 0 <= column < 24


def test_bytes_that_are_not_utf8_are_a_4xx(client: TestClient) -> None:
    for body in (b'{"name": "\xff\xfe"}', b"\xff\xfe{"):
        response = client.post("/api/studies", content=body, headers=JSON)
        assert response.status_code in (400, 422) and response.json()["detail"]
    cesu = client.post("/api/studies", content=b'{"name": "\xed\xa0\x80"}', headers=JSON)
    assert "not valid Unicode" in _says_why(cesu)  # a surrogate spelled in bytes


def test_recursion_and_encoding_errors_anywhere_are_a_422(sqlite_url: str) -> None:
    app = app_for(sqlite_url)

    def recurse() -> None:
        """A route that overflows the stack, as a too-deep input could."""
        recurse()

    def encode() -> None:
        """A route that meets text UTF-8 cannot hold, as a database driver could."""
        "\ud800".encode()

    app.add_api_route("/odd/recursion", recurse)
    app.add_api_route("/odd/encoding", encode)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert "too deeply" in _says_why(client.get("/odd/recursion"))
        assert "not valid Unicode" in _says_why(client.get("/odd/encoding"))


def test_the_study_form_shows_bounds_too_narrow_next_to_the_field(client: TestClient) -> None:
    form = {
        "name": "narrow",
        "task": "mnist1d-mlp",
        "optimizer": "adam",
        "tuner": "random",
        "space": "bounds",
        "alpha_low": "1e10",
        "alpha_high": repr(math.nextafter(1e10, math.inf)),
        "eps_low": "1e-8",
        "eps_high": "1",
        "seeds": "1",
    }
    response = client.post("/studies/new", data=form)
    assert response.status_code == 422 and "too narrow" in response.text
