"""Attacks from another origin, in headless Chromium: the dashboard's own pages break no rule
of their Content-Security-Policy, while a page served by a second local web server can
neither frame the dashboard nor cancel a study with fetch() or a posted form."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.conftest import Site
from tests.service.helpers import grid_study

#: Records every CSP violation of a page (some, e.g. blocked inline styles, log nothing).
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""
PLOTTED = "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n"


class Attacker:
    """A web server on another origin that serves the pages an attacker writes."""

    def __init__(self, host: str) -> None:
        pages: dict[str, str] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, path: str, html: str) -> str:
        """Serve `html` at `path`; its URL."""
        self.pages[path] = html
        return self.url + path

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(
    params=[
        pytest.param("localhost", id="cross-site"),  # another site than 127.0.0.1
        pytest.param("127.0.0.1", id="same-site-other-port"),
    ]
)
def attacker(request: pytest.FixtureRequest) -> Iterator[Attacker]:
    """The attacker's server, on another site or on the dashboard's host at another port."""
    server = Attacker(request.param)
    yield server
    server.close()


@pytest.fixture
def tab(desktop: Any) -> Iterator[Any]:
    """A page that records CSP violations and console errors."""
    page = desktop.new_page()
    page.set_default_timeout(15_000)
    page.add_init_script(VIOLATIONS)
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.console_errors.append(f"uncaught: {e}"))
    yield page
    page.close()


def _running_study(site: Site) -> int:
    response = site.http.post("/api/studies", json=grid_study("target"))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _state(site: Site, study_id: int) -> str:
    return str(site.http.get(f"/api/studies/{study_id}").json()["state"])


def test_dashboard_pages_break_no_csp_rule(tab: Any, site: Site) -> None:
    s = site.seeded
    pages = [
        ("/", 0),
        ("/workers", 0),
        (f"/studies/{s.live_study}", 3),
        (f"/studies/{s.bounds_study}", 3),
        (f"/experiments/{s.report_experiment}", 3),
        (f"/experiments/{s.live_experiment}", 1),
        ("/studies/new", 0),
        ("/experiments/new", 0),
    ]
    for path, plots in pages:
        response = tab.goto(site.url + path)
        assert response is not None and response.status == 200, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        if plots:
            tab.wait_for_function(PLOTTED, arg=plots)
            tab.locator(".js-plotly-plot").first.hover()  # hover labels, the mode bar
        assert tab.evaluate("window.__violations") == [], path
        assert tab.console_errors == [], path


def test_the_dashboard_itself_may_still_post(tab: Any, site: Site) -> None:
    study_id = _running_study(site)
    tab.goto(f"{site.url}/studies/{study_id}")
    status = tab.evaluate(
        "url => fetch(url, {method: 'POST'}).then(r => r.status)",
        f"{site.url}/api/studies/{study_id}/pause",
    )
    assert status == 200 and _state(site, study_id) == "paused"


def test_another_origin_cannot_frame_the_dashboard(
    tab: Any, site: Site, attacker: Attacker
) -> None:
    url = attacker.serve(
        "/frame.html",
        f'<!doctype html><title>evil</title><iframe id="f" src="{site.url}/"></iframe>',
    )
    tab.goto(url)
    tab.wait_for_timeout(1000)
    framed = [frame for frame in tab.frames if frame != tab.main_frame]
    assert len(framed) == 1
    assert "Skip to content" not in framed[0].content(), "the dashboard rendered in a frame"
    assert any("frame" in error.lower() for error in tab.console_errors), tab.console_errors


@pytest.mark.parametrize("path", ["/api/studies/{id}/cancel", "/studies/{id}/actions/cancel"])
def test_another_origin_cannot_cancel_with_fetch(
    tab: Any, site: Site, attacker: Attacker, path: str
) -> None:
    study_id = _running_study(site)
    target = site.url + path.format(id=study_id)
    url = attacker.serve(
        "/fetch.html",
        "<!doctype html><title>evil</title><script>"
        f"fetch({target!r}, {{method: 'POST', mode: 'no-cors', credentials: 'include',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'x=1'})"
        ".finally(() => {{ document.title = 'sent'; }});"
        "</script>",
    )
    tab.goto(url)
    tab.wait_for_function("() => document.title === 'sent'")
    assert _state(site, study_id) == "running"


@pytest.mark.parametrize("path", ["/api/studies/{id}/cancel", "/studies/{id}/actions/cancel"])
def test_another_origin_cannot_cancel_with_a_form(
    tab: Any, site: Site, attacker: Attacker, path: str
) -> None:
    study_id = _running_study(site)
    target = site.url + path.format(id=study_id)
    url = attacker.serve(
        "/form.html",
        "<!doctype html><title>evil</title>"
        f'<form id="f" method="post" action="{target}"><input name="action" value="cancel">'
        "</form><script>document.getElementById('f').submit();</script>",
    )
    with tab.expect_navigation(url=target):
        tab.goto(url)
    assert "another site" in tab.content()
    assert _state(site, study_id) == "running"
