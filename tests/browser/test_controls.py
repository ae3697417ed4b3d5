"""The Pause / Resume / Cancel / Delete buttons of the study and experiment pages in headless
Chromium, on a server with a token: refused with a message until the token is given, then
each click changes the state and the page shows it; cancel and delete ask first."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.browser.conftest import DESKTOP, Console, screenshot
from tests.service.helpers import ThreadServer, grid_study

TOKEN = "browser-token"


class Guarded(httpx.Client):
    """An HTTP client that sends the token, and the server's URL."""

    url: str


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Guarded]:
    """A server with a token, and an HTTP client that sends it."""
    folder = tmp_path_factory.mktemp("controls")
    shutil.copy(sqlite_template, folder / "avatune.db")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'avatune.db'}",
        data_dir=folder / "data",
        idle_retry_seconds=0.05,
        token=TOKEN,
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        ThreadServer(create_app(settings)) as server,
        Guarded(base_url=server.url, headers=headers, timeout=60) as http,
    ):
        http.url = server.url
        yield http


@pytest.fixture
def fresh(browser: Any) -> Iterator[Any]:
    """A page in a context of its own: no token cookie yet."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _state(page: Any) -> Any:
    return page.locator("h1 .state")


def _button(page: Any, name: str) -> Any:
    return page.locator("#controls").get_by_role("button", name=name, exact=True)


def _buttons(page: Any) -> list[str]:
    return page.locator("#controls button[data-action]").all_inner_texts()


def test_study_controls_refuse_without_the_token_then_work(fresh: Any, guarded: Guarded) -> None:
    from playwright.sync_api import expect

    page = fresh
    sid = guarded.post("/api/studies", json=grid_study("browser study")).json()["id"]
    page.goto(f"{guarded.url}/studies/{sid}")
    assert _buttons(page) == ["Pause", "Cancel", "Delete"]
    status = page.locator("#controls-status")

    _button(page, "Pause").click()
    expect(status).to_contain_text("this server needs its token (AVATUNE_TOKEN)")
    expect(status).to_have_class(re.compile("error-message"))
    page.get_by_label(re.compile("Server token")).fill("not-it")
    _button(page, "Pause").click()
    expect(status).to_contain_text("wrong token")
    assert guarded.get(f"/api/studies/{sid}").json()["state"] == "running"
    screenshot(page, "controls-refused")

    page.get_by_label(re.compile("Server token")).fill(TOKEN)
    _button(page, "Pause").click()
    expect(_state(page)).to_have_text("paused")
    expect(status).to_have_text(f"Study {sid} paused.")
    assert _buttons(page) == ["Resume", "Cancel", "Delete"]
    assert page.locator("#controls-token").count() == 0  # the cookie holds the token now
    assert guarded.get(f"/api/studies/{sid}").json()["state"] == "paused"

    _button(page, "Resume").click()
    expect(_state(page)).to_have_text("running")
    expect(status).to_have_text(f"Study {sid} resumed: it is running now.")

    page.once("dialog", lambda dialog: dialog.dismiss())
    _button(page, "Cancel").click()
    assert guarded.get(f"/api/studies/{sid}").json()["state"] == "running"
    questions: list[str] = []

    def accept(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    _button(page, "Cancel").click()
    expect(_state(page)).to_have_text("cancelled")
    assert "Its queued trials are dropped for good" in questions[0]
    assert _buttons(page) == ["Delete"]
    assert guarded.get(f"/api/studies/{sid}").json()["counts"] == {"cancelled": 9}

    page.once("dialog", accept)
    _button(page, "Delete").click()
    page.wait_for_url(f"{guarded.url}/")
    assert "cannot be undone" in questions[1]
    assert guarded.get(f"/api/studies/{sid}").status_code == 404


def test_experiment_controls(fresh: Any, guarded: Guarded, console: Console) -> None:
    from playwright.sync_api import expect

    page = fresh
    console.attach(page)
    spec = {
        "name": "browser grids",
        "task": "mnist1d-mlp",
        "optimizers": ["adam", "avagrad"],
        "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8, 1e-4]},
        "fidelity": {"steps": 5},
    }
    experiment = guarded.post("/api/experiments", json=spec).json()
    eid = experiment["id"]
    grid_states = page.locator("#experiment-live [data-field='state'] .state")
    page.goto(f"{guarded.url}/experiments/{eid}")
    assert _buttons(page) == ["Pause", "Cancel", "Delete"]

    page.get_by_label(re.compile("Server token")).fill(TOKEN)
    _button(page, "Pause").click()
    expect(_state(page)).to_have_text("paused")
    expect(grid_states).to_have_text(["paused", "paused"])
    expect(page.locator("#controls-status")).to_have_text(f"Experiment {eid} paused.")

    _button(page, "Resume").click()
    expect(_state(page)).to_have_text("running")
    expect(grid_states).to_have_text(["running", "running"])

    page.once("dialog", lambda dialog: dialog.accept())
    _button(page, "Cancel").click()
    expect(_state(page)).to_have_text("cancelled")
    expect(grid_states).to_have_text(["cancelled", "cancelled"])
    report = page.locator("#report-status")
    expect(report).to_contain_text("This experiment was cancelled")
    assert "could not be made" not in report.inner_text()
    assert _buttons(page) == ["Delete"]
    screenshot(page, "controls-experiment-cancelled")

    page.once("dialog", lambda dialog: dialog.accept())
    _button(page, "Delete").click()
    page.wait_for_url(f"{guarded.url}/")
    assert guarded.get(f"/api/experiments/{eid}").status_code == 404
    for study in experiment["studies"]:
        assert guarded.get(f"/api/studies/{study['id']}").status_code == 404
    assert console.errors == []


def test_an_experiments_grid_has_no_delete_button(fresh: Any, guarded: Guarded) -> None:
    spec = {
        "name": "grids kept together",
        "task": "mnist1d-mlp",
        "optimizers": ["adam"],
        "space": {"alphas": [1e-3], "epsilons": [1e-8]},
    }
    experiment = guarded.post("/api/experiments", json=spec).json()
    fresh.goto(f"{guarded.url}/studies/{experiment['studies'][0]['id']}")
    assert _buttons(fresh) == ["Pause", "Cancel"]
