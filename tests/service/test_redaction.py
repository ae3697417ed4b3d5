"""Database passwords never reach the terminal, the logs or a response: `avatune serve` and
`avatune db upgrade` print URLs redacted, and a 503 says only that the database is down."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import typer
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from service.cli import register
from service.redact import redact
from service.settings import Settings
from tests.service.helpers import app_for
from tests.service.postgres import free_port

SECRET = "hunter2-Secret"


@pytest.fixture
def app() -> typer.Typer:
    """The root command with the server's commands."""
    root = typer.Typer()
    register(root)
    return root


def with_password(url: str) -> str:
    """`url` (PostgreSQL, which trusts the test user) with a password in it."""
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql+psycopg://u:pw@db:5432/a", "postgresql+psycopg://u:***@db:5432/a"),
        ("cannot open postgres://u:p/w@h/x now", "cannot open postgres://u:***@h/x now"),
        ("not a URL: 'postgresql//u:pw@h/d'", "not a URL: 'postgresql//u:***@h/d'"),
        ("host=h password=pw user=u", "host=h password=*** user=u"),
        ("?sslmode=require&password=pw", "?sslmode=require&password=***"),
        ("postgresql+psycopg://user@host/db", "postgresql+psycopg://user@host/db"),
        ("check the user, password and port", "check the user, password and port"),
    ],
)
def test_redact_hides_passwords_only(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_redact_renders_a_sqlalchemy_url_without_its_password() -> None:
    assert redact(make_url("postgresql://u:pw@h/d")) == "postgresql://u:***@h/d"


def test_db_upgrade_prints_the_url_without_its_password(
    app: typer.Typer, postgres_url: str
) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", with_password(postgres_url)])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and ":***@" in result.output


@pytest.mark.parametrize(
    "url",
    [
        f"postgres://avatune:{SECRET}@127.0.0.1:5432/avatune",  # the fix it suggests
        f"postgresql+psycopg//avatune:{SECRET}@127.0.0.1/avatune",  # not a URL at all
        "postgresql+psycopg://avatune:{secret}@127.0.0.1:{port}/avatune",  # nothing listens
    ],
)
def test_db_upgrade_errors_hide_the_password(app: typer.Typer, url: str) -> None:
    url = url.format(secret=SECRET, port=free_port())
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", url])
    assert result.exit_code in (1, 2), result.output
    assert SECRET not in result.output and "***" in result.output


def test_serve_logs_the_url_without_its_password(
    app: typer.Typer,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # start, do not serve
    monkeypatch.delenv("AVATUNE_DATABASE_URL", raising=False)
    caplog.set_level(logging.INFO)
    url = with_password(postgres_url)
    result = CliRunner().invoke(app, ["serve", "--db", url, "--port", str(free_port())])
    monkeypatch.delenv("AVATUNE_DATABASE_URL", raising=False)  # serve exports its flags
    assert result.exit_code == 0, result.output
    logged = result.output + caplog.text + repr([vars(r) for r in caplog.records])
    assert "starting: postgresql database" in logged
    assert SECRET not in logged


def test_serve_refusing_the_url_hides_the_password(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", f"postgres://u:{SECRET}@h/d"])
    assert result.exit_code == 2 and SECRET not in result.output


def test_settings_errors_do_not_echo_the_url() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url=f"postgres://u:{SECRET}@h/d")
    assert SECRET not in str(caught.value)


def _break(database_url: str, tmp_path: Path) -> str:
    """A URL of the same backend whose database cannot be opened (a password in it)."""
    if database_url.startswith("sqlite"):
        folder = tmp_path / "gone"
        folder.mkdir()
        return f"sqlite:///{folder / 'avatune.db'}"
    broken = make_url(database_url).set(database="no_such_database", password=SECRET)
    return broken.render_as_string(hide_password=False)


def test_503_says_only_that_the_database_is_unavailable(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = _break(database_url, tmp_path)
    app = app_for(url)
    if url.startswith("sqlite"):
        shutil.rmtree(tmp_path / "gone")  # the file can no longer be created
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "avatune.server"):
        response = client.get("/api/studies")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "database unavailable, retry"}
    logged = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
    assert logged, "the driver's reason goes to the server's log"
    assert SECRET not in " ".join(logged) and SECRET not in response.text
