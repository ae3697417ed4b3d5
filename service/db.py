"""The database engine: SQLite (WAL, immediate write transactions) or PostgreSQL (psycopg 3).

Every unit of work is a Core transaction on a `Connection`: `Database.write()` for work
that changes rows (on SQLite ``BEGIN IMMEDIATE``, so writers queue on the lock instead of
failing on upgrade), `Database.read()` for queries (a deferred transaction on SQLite).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from anyio import to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from studies.specs import StudySpec

T = TypeVar("T")
SQLITE_BUSY_MS = 30_000
_READ = "avatune_read"


POSTGRES_EXAMPLE = "postgresql+psycopg://user@host/db"


class DatabaseURLError(ValueError):
    """A database URL that cannot work; the message says what to write instead."""


def _sqlite_forms(path: str) -> str:
    """``sqlite:///`` spelled for `path`: absolute, and relative when `path` is."""
    absolute = f"sqlite:///{Path(path).expanduser().resolve()}"
    if path.startswith(("/", "~")):
        return absolute
    return f"{absolute} (or sqlite:///./{path.removeprefix('./')})"


def check_database_url(url: str | URL) -> URL:
    """`url` parsed, or DatabaseURLError with the fix (a file path, an unknown scheme, a
    missing driver, a SQLite file in a folder that does not exist)."""
    if isinstance(url, URL):
        parsed = url
    else:
        text = url.strip()
        try:
            if "://" not in text:
                raise ArgumentError(text)
            parsed = make_url(text)
        except ArgumentError:
            raise DatabaseURLError(
                f"not a database URL: {text!r}; use {_sqlite_forms(text or 'avatune.db')} "
                f"or {POSTGRES_EXAMPLE}"
            ) from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        fixed = parsed.set(drivername="postgresql+psycopg").render_as_string()
        raise DatabaseURLError(f"write postgresql:// (not postgres://): {fixed}")
    if backend == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise DatabaseURLError(
                "PostgreSQL needs the psycopg 3 driver: pip install 'psycopg[binary]'"
            )
        return parsed
    if backend != "sqlite":
        raise DatabaseURLError(
            f"unsupported database {parsed.drivername!r}: avatune runs on SQLite "
            f"(sqlite:///path/to/avatune.db) or PostgreSQL ({POSTGRES_EXAMPLE})"
        )
    if parsed.get_driver_name() not in ("pysqlite", "sqlite"):
        raise DatabaseURLError(
            f"unsupported SQLite driver {parsed.drivername!r}: write sqlite:///path/to/avatune.db"
        )
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise DatabaseURLError(
                f"the folder of the SQLite file {database!r} does not exist: "
                f"create it (mkdir -p {folder}) or fix the path"
            )
    return parsed


def normalize_url(url: str | URL) -> URL:
    """The URL with the psycopg 3 driver for PostgreSQL; DatabaseURLError on other databases."""
    parsed = check_database_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def connection_error_message(url: str | URL, error: BaseException) -> str:
    """One line for a database that would not open: which one, why, and what to check."""
    parsed = make_url(url) if isinstance(url, str) else url
    shown = parsed.render_as_string(hide_password=True)
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    why = " ".join(reason[:1]) or type(error).__name__
    if parsed.get_backend_name() == "sqlite":
        return f"cannot open the SQLite database {shown} ({why}); check the path and permissions"
    return (
        f"cannot connect to {shown} ({why}); is PostgreSQL running there, and are the host, "
        "port, user, password and database name right?"
    )


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        read = conn.get_execution_options().get(_READ, False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def make_engine(url: str | URL, *, pool_size: int = 20) -> Engine:
    """An engine for `url`, configured for this service's transactions."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=60,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000},
        )
        _sqlite_events(engine)
        return engine
    return create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_timeout=60, pool_recycle=3600
    )


class Database:
    """An engine and the two kinds of transaction the repositories run in."""

    def __init__(self, url: str | URL, *, pool_size: int = 20) -> None:
        self.engine = make_engine(url, pool_size=pool_size)
        self._reader = self.engine.execution_options(**{_READ: True})
        #: Study specs by id: immutable once created, ids never reused.
        self.specs: dict[int, StudySpec] = {}
        #: Small per-process bookkeeping (e.g. when expired leases were last reaped).
        self.state: dict[str, Any] = {}

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may change rows; committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._reader.connect() as conn:
            yield conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work from an async route.

        SQLite has one writer at a time, so its short transactions run right in the event
        loop (a thread hop would cost more than the work); PostgreSQL's run in worker
        threads, so that transactions of concurrent requests overlap.
        """
        if self.dialect == "sqlite":
            return fn(*args)
        return await to_thread.run_sync(partial(fn, *args))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
