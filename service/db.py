"""The database engine: SQLite (WAL, immediate write transactions) or PostgreSQL (psycopg 3).

Every unit of work is a Core transaction on a `Connection`: `Database.write()` for work
that changes rows (on SQLite ``BEGIN IMMEDIATE``, so writers queue on the lock instead of
failing on upgrade), `Database.read()` for queries (a deferred transaction on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from anyio import to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from studies.specs import StudySpec

T = TypeVar("T")
SQLITE_BUSY_MS = 30_000
_READ = "avatune_read"


def normalize_url(url: str | URL) -> URL:
    """The URL with the psycopg 3 driver for PostgreSQL; ValueError on other databases."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed


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
