"""The dashboard's routes without a browser: incremental data, bad input, forms with a token,
cross-site posts, plotly.js served from the installed package."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.dashboard.assets import plotly_file
from tests.service.helpers import app_for, drive, grid_study

VALID_STUDY = {
    "name": "form study",
    "task": "mnist1d-mlp",
    "optimizer": "avagrad",
    "tuner": "grid",
    "space": "coarse",
    "seeds": "1",
}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """A client on an app (SQLite, PostgreSQL) with one 3×4 grid study, nothing run yet."""
    with TestClient(app_for(database_url)) as client:
        client.post("/api/studies", json=grid_study(n_alpha=3, n_eps=4)).raise_for_status()
        yield client


def _report(client: TestClient, n: int, value: float = 5.0) -> list[int]:
    lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": n}).json()
    for trial in lease["trials"]:
        client.post(
            f"/api/trials/{trial['trial_id']}/result",
            json={"token": lease["token"], "value": value},
        ).raise_for_status()
    return [t["trial_id"] for t in lease["trials"]]


def test_data_sends_only_trials_finished_after_the_cursor(client: TestClient) -> None:
    _report(client, 3)
    snapshot = client.get("/studies/1/data").json()
    assert snapshot["full"] and snapshot["cells"] == [3, 4] and snapshot["filled"] == 3
    assert len(snapshot["figures"]["heatmap"]["data"][0]["z"]) == 3
    nothing = client.get("/studies/1/data", params={"after": snapshot["cursor"]}).json()
    assert nothing["trials"] == [] and nothing["cursor"] == snapshot["cursor"]
    new = _report(client, 2, value=1.0)
    answer = client.get("/studies/1/data", params={"after": snapshot["cursor"]}).json()
    assert [row[0] for row in answer["trials"]] == new
    assert answer["study"]["trainings_done"] == 5 and answer["study"]["best"]["value"] == 1.0


def test_study_page_html_holds_aggregates_not_trials(client: TestClient) -> None:
    assert drive(client) == 12
    page = client.get("/studies/1")
    assert page.status_code == 200
    assert '3×4 cells, <span data-field="filled">12</span> filled' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_a_study_no_worker_can_run_says_why_on_its_page(client: TestClient) -> None:
    waiting = client.get("/studies/1")
    assert 'id="waiting"' in waiting.text and "none has asked for trials" in waiting.text
    assert drive(client) == 12
    assert 'id="waiting"' not in client.get("/studies/1").text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/studies/1/data?after=nonsense", 422),
        ("/studies/1/data?after=" + "9" * 60, 422),
        ("/studies/1/data?after=999999999999999999.1", 422),
        ("/studies/1/data?after=1.99999999999999999999", 422),
        ("/studies/1/data?after=1700000000000000.9999999999", 200),
        ("/studies/99/data", 404),
        ("/studies/0", 422),
        ("/studies/99", 404),
        ("/studies/99/trials", 404),
        ("/studies/99/curves", 404),
        ("/experiments/99", 404),
        ("/experiments/99/data", 404),
        ("/?page=0", 422),
        ("/studies/1/trials?sort=evil&order=sideways&state=nope&page=-4", 200),
        ("/studies/1?curve=abc&curve=1,2,x&page=99999999999", 200),
        ("/studies/1/trials?page=" + "9" * 5000, 200),
        ("/studies/1/curves?curve=" + ",".join(["1"] * 50), 200),
    ],
)
def test_bad_input_is_a_4xx_never_a_5xx(client: TestClient, path: str, status: int) -> None:
    assert client.get(path).status_code == status


def test_form_errors_are_shown_next_to_fields(client: TestClient) -> None:
    bad = {**VALID_STUDY, "name": "", "space": "explicit", "alphas": "1e-3, x", "epsilons": ""}
    response = client.post("/studies/new", data=bad)
    assert response.status_code == 422
    assert 'id="name-error"' in response.text and 'aria-invalid="true"' in response.text
    assert "value 2: Input should be a valid number" in response.text
    unknown = client.post("/studies/new", data={**VALID_STUDY, "optimizer": "adamax"})
    assert "unknown optimizer" in unknown.text


def test_forms_create_and_redirect(client: TestClient) -> None:
    response = client.post("/studies/new", data=VALID_STUDY, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/studies/2"
    assert client.get("/api/studies/2").json()["budget"] == 121
    experiment = {
        "name": "e",
        "task": "mnist1d-mlp",
        "optimizers": ["adam", "avagrad"],
        "space": "coarse",
        "seeds": "1",
        "replay_tuners": ["gld", "cgld"],
        "replay_seeds": "5",
        "deltas": "1",
    }
    response = client.post("/experiments/new", data=experiment, follow_redirects=False)
    assert response.status_code == 303
    created = client.get(response.headers["location"].replace("/experiments", "/api/experiments"))
    assert created.json()["spec"]["eps_shift"] is False  # an unticked box is a no


def test_cross_site_form_posts_are_refused(client: TestClient) -> None:
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    response = client.post("/studies/new", data=VALID_STUDY, headers=headers)
    assert response.status_code == 403
    assert client.get("/api/studies").json()[0]["id"] == 1


def test_forms_need_the_token_when_the_server_has_one(sqlite_url: str) -> None:
    with TestClient(app_for(sqlite_url, token="s3cret-token-value")) as client:
        form = client.get("/studies/new")
        assert 'name="token"' in form.text
        missing = client.post("/studies/new", data=VALID_STUDY)
        assert missing.status_code == 401 and "needs its token" in missing.text
        wrong = client.post("/studies/new", data={**VALID_STUDY, "token": "nope"})
        assert wrong.status_code == 401 and "wrong token" in wrong.text
        right = client.post(
            "/studies/new",
            data={**VALID_STUDY, "token": "s3cret-token-value"},
            follow_redirects=False,
        )
        assert right.status_code == 303 and "httponly" in right.headers["set-cookie"].lower()
        again = client.post("/studies/new", data=VALID_STUDY, follow_redirects=False)
        assert again.status_code == 303  # the cookie now carries the token
        assert client.get("/").status_code == 200  # reading needs no token


def test_plotly_js_comes_from_the_installed_package(client: TestClient) -> None:
    raw = plotly_file().read_bytes()
    zipped = client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.content == raw  # httpx undoes the gzip
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(gzip.compress(raw[:1000])) + len(raw) // 2
    cached = client.get("/vendor/plotly.min.js", headers={"If-None-Match": zipped.headers["etag"]})
    assert cached.status_code == 304
    page: Any = client.get("/studies/1").text
    assert "/vendor/plotly.min.js?v=" in page and "cdn" not in page.lower()
