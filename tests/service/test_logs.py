"""Server logs: JSON lines, the access log, lifecycle lines, `serve --log-*` options."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from studies.log_setup import OWN_LOGGERS, configure_logging
from tests.service.helpers import ROOT, _env, drive, grid_study, settings, wait_until
from tests.service.postgres import free_port


def _reset_logging() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_avatune", False)]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.getLogger("uvicorn.access").propagate = True


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """configure_logging(info, json) into a buffer; undone afterwards."""
    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    yield buffer
    _reset_logging()


def lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_carry_ts_level_logger_msg_and_extra_fields(json_log: io.StringIO) -> None:
    logging.getLogger("avatune.test").info("hello %s", "there", extra={"trials": 3, "ms": 1.5})
    logging.getLogger("avatune.test").debug("not at info")
    logging.getLogger("somelibrary").info("third-party info stays quiet")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("avatune.test").exception("failed")
    first, second = lines(json_log.getvalue())
    assert first["ts"].endswith("Z") and first["ts"][10] == "T"
    assert {k: first[k] for k in ("level", "logger", "msg", "trials", "ms")} == {
        "level": "info",
        "logger": "avatune.test",
        "msg": "hello there",
        "trials": 3,
        "ms": 1.5,
    }
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]


def test_text_lines_and_levels() -> None:
    buffer = io.StringIO()
    try:
        configure_logging("warning", "text", stream=buffer)
        logging.getLogger("avatune.x").info("hidden")
        logging.getLogger("avatune.x").warning("shown %d", 7)
    finally:
        _reset_logging()
    (line,) = buffer.getvalue().splitlines()
    assert line.endswith("WARNING avatune.x: shown 7") and line[:4].isdigit()
    with pytest.raises(ValueError, match="log level"):
        configure_logging("loud", "text")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "xml")


def test_access_and_lifecycle_lines_of_the_app(sqlite_url: str, json_log: io.StringIO) -> None:
    with TestClient(create_app(settings(sqlite_url))) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/studies/999").status_code == 404
        sid = client.post("/api/studies", json=grid_study(n_alpha=2, n_eps=1)).json()["id"]
        assert drive(client, k=2) == 2
        other = client.post("/api/studies", json=grid_study("c")).json()["id"]
        assert client.post(f"/api/studies/{other}/cancel").status_code == 200
    entries = lines(json_log.getvalue())
    access = [e for e in entries if e["logger"] == "avatune.access"]
    assert [(e["method"], e["path"], e["status"]) for e in access[:3]] == [
        ("GET", "/healthz", 200),
        ("GET", "/api/studies/999", 404),
        ("POST", "/api/studies", 201),
    ]
    assert len(access) == 3 + 4 + 2  # drive: lease, 2 results, empty lease; create, cancel
    assert all(isinstance(e["ms"], float) and e["ms"] >= 0 and e["client"] for e in access)
    assert access[0]["msg"].startswith("GET /healthz 200 ")
    events = [(e["logger"], e["msg"]) for e in entries if e["logger"] != "avatune.access"]
    assert ("avatune.lifecycle", f"study {sid} finished: done (grid, 2 trials)") in events
    assert ("avatune.studies", f"study {other} cancelled") in events
    created = [e for e in entries if e["msg"].startswith(f"study {sid} created")]
    assert created[0]["budget"] == 2 and created[0]["tuner"] == "grid"
    assert [m for _, m in events if m.startswith("api process")][-1].endswith("shutting down")


EXPERIMENT = {
    "name": "logged",
    "task": "mnist1d-mlp",
    "optimizers": ["adam", "avagrad"],
    "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8]},
    "fidelity": {"steps": 5},
}


def test_experiment_lines(sqlite_url: str, json_log: io.StringIO) -> None:
    with TestClient(create_app(settings(sqlite_url))) as client:
        done = client.post("/api/experiments", json=EXPERIMENT).json()
        assert drive(client, k=8) == 4
        cancelled = client.post("/api/experiments", json=EXPERIMENT).json()
        assert client.post(f"/api/experiments/{cancelled['id']}/cancel").status_code == 200
    by_msg = {e["msg"]: e for e in lines(json_log.getvalue())}
    grids = [s["id"] for s in done["studies"]]
    created = by_msg[
        f"experiment {done['id']} created: 'logged' on mnist1d-mlp, grid studies {grids}"
    ]
    assert created["studies"] == grids and created["experiment"] == done["id"]
    assert by_msg[f"experiment {done['id']} finished: done"]["state"] == "done"
    other = [s["id"] for s in cancelled["studies"]]
    assert f"experiment {cancelled['id']} cancelled (grid studies {other})" in by_msg


def test_a_server_error_is_logged_as_a_warning(sqlite_url: str, json_log: io.StringIO) -> None:
    app = create_app(settings(sqlite_url))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/boom").status_code == 500
    (line,) = [e for e in lines(json_log.getvalue()) if e["logger"] == "avatune.access"]
    assert (line["status"], line["level"]) == (500, "warning")


def _serve(db_url: str, port: int, *args: str, env: dict[str, str] | None = None) -> Any:
    command = [sys.executable, "-m", "service", "serve", "--port", str(port), "--db", db_url]
    return subprocess.Popen(
        [*command, *args],
        cwd=ROOT,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_with_two_processes_writes_json_lines(tmp_path: Path) -> None:
    """A real `serve --workers 2 --log-format json`: every line is JSON, each API process
    configures logging, uvicorn's lines go through it, requests are logged once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(f"sqlite:///{tmp_path}/a.db", port, "--workers", "2", "--log-format", "json")
    try:
        assert wait_until(lambda: _healthy(url), 60), server.poll()
        for _ in range(5):
            assert httpx.get(f"{url}/healthz").status_code == 200
        created = httpx.post(f"{url}/api/studies", json=grid_study())
        assert created.status_code == 201
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=60)
    entries = lines(out)
    messages = [e["msg"] for e in entries]
    start = messages.index(f"starting: sqlite database sqlite:///{tmp_path}/a.db")
    assert messages[start + 1].startswith("migrations applied: schema at ")
    assert entries[start]["dialect"] == "sqlite"
    ready = {e["pid"] for e in entries if e["msg"].startswith("api process")}
    assert len(ready) == 2 and server.pid not in ready
    assert any(e["logger"].startswith("uvicorn") for e in entries)
    access = [e for e in entries if e["logger"] == "avatune.access"]
    assert len([e for e in access if e["path"] == "/healthz"]) >= 6
    assert [e["status"] for e in access if e["path"] == "/api/studies"] == [201]
    assert not any(e["logger"] == "uvicorn.access" for e in entries)
    assert any(e["msg"].startswith("study 1 created") for e in entries)


def test_serve_masks_the_database_password(tmp_path: Path) -> None:
    port = free_port()
    secret = "s3cr3t-pw"
    server = _serve(
        f"postgresql://user:{secret}@127.0.0.1:{free_port()}/db",
        port,
        env={"AVATUNE_LOG_FORMAT": "json", "AVATUNE_LOG_LEVEL": "info"},
    )
    out, _ = server.communicate(timeout=120)
    assert server.returncode != 0  # nothing listens there
    start = next(e for e in lines_of_json(out) if e.get("msg", "").startswith("starting"))
    assert start["dialect"] == "postgresql" and secret not in json.dumps(start)
    assert "user:***@127.0.0.1" in start["db"]


def lines_of_json(text: str) -> list[dict[str, Any]]:
    """The lines of `text` that are JSON objects (a failed start also prints a message)."""
    found = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--log-level", "loud"], {}),
        (["--log-format", "xml"], {}),
        ([], {"AVATUNE_LOG_LEVEL": "chatty"}),
        ([], {"AVATUNE_LOG_FORMAT": "yaml"}),
    ],
)
def test_invalid_log_options_are_usage_errors(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.__main__ import app

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AVATUNE_DATABASE_URL", "sqlite:///never-created.db")
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and "log-" in result.output
    assert not os.path.exists("never-created.db")
