"""Browser-test fixtures: a live server on a seeded SQLite database, and headless Chromium
(Debian's `chromium`, driven by Playwright) with every console error recorded.

Without a `chromium` binary the browser tests are skipped, except under `CI=true`, where
they fail. Screenshots go to `out/screenshots/` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.browser.seed import Seeded, seed
from tests.service.helpers import ThreadServer

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


def chromium_path() -> str:
    """Debian's Chromium; skip (fail under CI=true) when it is not installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no `chromium` binary: apt-get install chromium (Debian) to run browser tests"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: browser tests may not be skipped)")
        pytest.skip(message)
    return path


@dataclass
class Site:
    """The running server, an HTTP client on it, and what the seed created."""

    url: str
    http: httpx.Client
    seeded: Seeded
    data_dir: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    """A uvicorn server (background thread) on a freshly seeded database."""
    folder = tmp_path_factory.mktemp("dashboard")
    shutil.copy(sqlite_template, folder / "avatune.db")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'avatune.db'}",
        data_dir=folder / "data",
        idle_retry_seconds=0.05,
    )
    with (
        ThreadServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        yield Site(server.url, http, seed(http), folder / "data")


@dataclass
class Console:
    """Console errors and uncaught exceptions of a page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        """Listen to a page."""
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the module."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console() -> Console:
    """Where the page fixture records console errors."""
    return Console()


@pytest.fixture(scope="module")
def desktop(browser: Any) -> Iterator[Any]:
    """A 1280 px wide browser context, shared so plotly.js is fetched once per module."""
    context = browser.new_context(viewport=DESKTOP)
    yield context
    context.close()


@pytest.fixture
def page(desktop: Any, console: Console) -> Iterator[Any]:
    """A fresh page whose console errors land in `console`."""
    page = desktop.new_page()
    page.set_default_timeout(15_000)
    console.attach(page)
    yield page
    page.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under out/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
