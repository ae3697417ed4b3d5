"""Shared fixtures: a PostgreSQL server the suite starts itself, migrated databases, and a
web server that is not avatune.

`database_url` is parametrized over SQLite and PostgreSQL. Without PostgreSQL server
binaries the PostgreSQL cases are skipped, except under `CI=true`, where they fail.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from studies.log_setup import OWN_LOGGERS
from tests.service.postgres import PostgresServer, PostgresUnavailable

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """`serve` and `worker` run in-process by CLI tests set up logging for the whole
    process: undo it after each test, so later tests' output holds no log lines."""
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in OWN_LOGGERS]
    handlers = [list(lg.handlers) for lg in (root, *loggers)]
    levels = [lg.level for lg in (root, *loggers)]
    propagate = [lg.propagate for lg in loggers]
    yield
    for logger, kept, level in zip((root, *loggers), handlers, levels, strict=True):
        logger.handlers[:] = kept
        logger.setLevel(level)
    for logger, flag in zip(loggers, propagate, strict=True):
        logger.propagate = flag


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL server (session-wide), with a migrated template database."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{error} (CI=true: PostgreSQL tests may not be skipped)")
        pytest.skip(str(error))
    try:
        server.start()
        from service.migrations import upgrade

        upgrade(server.create_database("avatune_template"))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database file, copied for each test."""
    from service.migrations import upgrade

    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of `backend`; returns its URL."""
    if backend == "sqlite":
        path = tmp_path / "avatune.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t{os.getpid()}_{next(_counter)}", template="avatune_template")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite file or PostgreSQL database."""
    return fresh_database(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty SQLite database."""
    return fresh_database("sqlite", request, tmp_path)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty PostgreSQL database."""
    return fresh_database("postgresql", request, tmp_path)


class _NotAvatune(BaseHTTPRequestHandler):
    """Some other web server: 404 on every GET, 501 on POST (http.server's default)."""

    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotAvatune)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
