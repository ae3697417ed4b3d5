"""The dashboard's Pause / Resume / Cancel / Delete buttons without a browser: the buttons the
state allows, the routes they post to (behind the forms' token: field or cookie, never from
another site), and a cancelled experiment's page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.dashboard.form_auth import COOKIE
from tests.service.helpers import app_for, grid_study

TOKEN = "tok-5"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXPERIMENT = {
    "name": "buttons",
    "task": "mnist1d-mlp",
    "optimizers": ["adam", "avagrad"],
    "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8, 1e-4]},
    "fidelity": {"steps": 5},
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(database_url, token=TOKEN)) as client:
        yield client


def _buttons(html: str) -> list[str]:
    return [a for a in ("pause", "resume", "cancel", "delete") if f'data-action="{a}"' in html]


def _post(client: TestClient, path: str, token: str | None = TOKEN, **headers: str) -> Any:
    body = "" if token is None else f"token={token}"
    return client.post(path, content=body, headers={**FORM, **headers})


def test_study_buttons_follow_the_state(client: TestClient) -> None:
    sid = client.post("/api/studies", json=grid_study(), headers=AUTH).json()["id"]
    page = client.get(f"/studies/{sid}").text
    assert _buttons(page) == ["pause", "cancel", "delete"]
    assert 'id="controls-token"' in page and "controls.js" in page
    paused = _post(client, f"/studies/{sid}/actions/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json() == {
        "action": "pause",
        "state": "paused",
        "message": f"Study {sid} paused.",
    }
    assert client.cookies.get(COOKIE) == TOKEN  # remembered, as the forms do
    page = client.get(f"/studies/{sid}").text
    assert _buttons(page) == ["resume", "cancel", "delete"]
    assert 'id="controls-token"' not in page  # the cookie holds it now
    resumed = _post(client, f"/studies/{sid}/actions/resume", token=None)
    assert resumed.json()["message"] == f"Study {sid} resumed: it is running now."
    cancelled = _post(client, f"/studies/{sid}/actions/cancel", token=None)
    assert cancelled.json()["state"] == "cancelled"
    assert _buttons(client.get(f"/studies/{sid}").text) == ["delete"]
    again = _post(client, f"/studies/{sid}/actions/cancel", token=None)
    assert again.status_code == 409
    assert again.json()["detail"] == f"cannot cancel study {sid}: it is cancelled"
    deleted = _post(client, f"/studies/{sid}/actions/delete", token=None)
    assert deleted.json()["location"] == "/"
    assert client.get(f"/api/studies/{sid}").status_code == 404
    assert _post(client, f"/studies/{sid}/actions/delete", token=None).status_code == 404


def test_an_experiments_grid_is_not_deleted_on_its_own(client: TestClient) -> None:
    experiment = client.post("/api/experiments", json=EXPERIMENT, headers=AUTH).json()
    sid = experiment["studies"][0]["id"]
    assert _buttons(client.get(f"/studies/{sid}").text) == ["pause", "cancel"]
    refused = _post(client, f"/studies/{sid}/actions/delete")
    assert refused.status_code == 409 and "delete the experiment" in refused.json()["detail"]


def test_experiment_buttons_and_a_cancelled_experiment(client: TestClient) -> None:
    eid = client.post("/api/experiments", json=EXPERIMENT, headers=AUTH).json()["id"]
    assert _buttons(client.get(f"/experiments/{eid}").text) == ["pause", "cancel", "delete"]
    paused = _post(client, f"/experiments/{eid}/actions/pause")
    assert paused.json()["state"] == "paused"
    api = client.get(f"/api/experiments/{eid}").json()
    assert [s["state"] for s in api["studies"]] == ["paused", "paused"]
    assert _buttons(client.get(f"/experiments/{eid}").text) == ["resume", "cancel", "delete"]
    cancelled = _post(client, f"/experiments/{eid}/actions/cancel", token=None)
    assert cancelled.json()["message"] == f"Experiment {eid} cancelled."
    page = client.get(f"/experiments/{eid}").text
    assert "state-cancelled" in page and "This experiment was cancelled" in page
    assert "could not be made" not in page and "Try again" not in page
    assert 'data-live="false"' in page and _buttons(page) == ["delete"]
    data = client.get(f"/experiments/{eid}/data").json()
    assert data["state"] == "cancelled" and data["cancelled"] and data["report_error"] is None
    deleted = _post(client, f"/experiments/{eid}/actions/delete", token=None)
    assert deleted.status_code == 200 and deleted.json()["location"] == "/"
    assert client.get(f"/experiments/{eid}").status_code == 404


def test_refused_without_the_token_or_from_another_site(client: TestClient) -> None:
    sid = client.post("/api/studies", json=grid_study(), headers=AUTH).json()["id"]
    bare = _post(client, f"/studies/{sid}/actions/pause", token=None)
    assert bare.status_code == 401
    assert bare.json()["detail"] == (
        "this server needs its token (AVATUNE_TOKEN): enter it in the token field"
    )
    wrong = _post(client, f"/studies/{sid}/actions/pause", token="nope")
    assert wrong.status_code == 401 and "wrong token" in wrong.json()["detail"]
    elsewhere = _post(
        client,
        f"/studies/{sid}/actions/pause",
        origin="https://evil.example",
        **{"sec-fetch-site": "cross-site"},
    )
    assert elsewhere.status_code == 403 and "another site" in elsewhere.json()["detail"]
    assert client.get(f"/api/studies/{sid}").json()["state"] == "running"
    assert client.cookies.get(COOKIE) is None


def test_unknown_action_or_target(client: TestClient) -> None:
    assert _post(client, "/studies/1/actions/explode").status_code == 422
    missing = _post(client, "/experiments/77/actions/pause")
    assert missing.status_code == 404 and missing.json()["detail"] == "experiment 77 does not exist"
