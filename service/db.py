"""The database engine: SQLite (WAL, immediate write transactions) or PostgreSQL (psycopg 3).

Every unit of work is a Core transaction on a `Connection`: `Database.write()` for work
that changes rows (on SQLite ``BEGIN IMMEDIATE``, so writers queue on the lock instead of
failing on upgrade), `Database.read()` for queries (a deferred transaction on SQLite).
Async routes hand their work to `Database.run`, which never lets it wait in the event
loop. On SQLite it is tried there first, without waiting: when the write lock is free and
the work is short it runs at once (a thread hop costs more than such work); when the lock
is taken, or the work would run long (a lease that asks tuners: `leave_loop`), it goes to
one long-lived writer thread that takes work from a queue (SQLite has one writer anyway,
and a queue is cheaper than anyio's thread pool). On PostgreSQL anyio's worker threads
run it, so that transactions of concurrent requests overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from anyio import to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.sql import Select

from service.process_cache import ProcessCache

if TYPE_CHECKING:
    from studies.specs import StudySpec

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])
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


def _sqlite_events(engine: Engine, busy_ms: int = SQLITE_BUSY_MS) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        read = conn.get_execution_options().get(_READ, False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def make_engine(url: str | URL, *, pool_size: int = 20, busy_ms: int = SQLITE_BUSY_MS) -> Engine:
    """An engine for `url`, configured for this service's transactions (on SQLite, waiting
    `busy_ms` for a lock)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=60,
            connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        )
        _sqlite_events(engine, busy_ms)
        return engine
    return create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_timeout=60, pool_recycle=3600
    )


def for_update(stmt: S, conn: Connection, *, skip_locked: bool = False, of: Any = None) -> S:
    """`stmt` with ``FOR UPDATE`` on PostgreSQL only (SQLite's BEGIN IMMEDIATE serialises)."""
    if conn.dialect.name != "postgresql":
        return stmt
    return stmt.with_for_update(skip_locked=skip_locked, of=of)


def lock(conn: Connection, stmt: Select[Any], params: dict[str, Any] | None = None) -> None:
    """Lock the rows `stmt` selects till the transaction ends (PostgreSQL; a no-op on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(for_update(stmt, conn), params or {}).all()


def _file(engine: Engine) -> bool:
    """Whether `engine` is on a SQLite file (which a second engine opens as the same database)."""
    database = engine.url.database or ""
    return engine.dialect.name == "sqlite" and database not in ("", ":memory:")


class NeedsWriter(Exception):
    """Work tried in the event loop that would wait or run long: run it on the writer thread."""


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Give `future` the work's outcome (in the event loop), unless it was cancelled."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class _Writer:
    """One long-lived thread that runs SQLite work handed to it through a queue, in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(
        self, loop: asyncio.AbstractEventLoop, call: Callable[[], Any]
    ) -> asyncio.Future[Any]:
        """Queue `call`; its outcome arrives in a future of `loop`."""
        future = loop.create_future()
        self._start()
        self._jobs.put((loop, future, call))
        return future

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="avatune-sqlite-writer", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            loop, future, call = job
            if future.cancelled():  # its request went away while it waited
                continue
            result, error = None, None
            try:
                result = call()
            except BaseException as caught:  # handed to the awaiting route
                error = caught
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_deliver, future, result, error)
            del job, loop, future, call, result, error

    def stop(self) -> None:
        """Let the thread finish the queued work and end (a later `submit` starts another)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._jobs.put(None)
            if thread is not threading.current_thread():
                thread.join(timeout=60)


class Database:
    """An engine and the two kinds of transaction the repositories run in."""

    def __init__(self, url: str | URL, *, pool_size: int = 20) -> None:
        self.engine = make_engine(url, pool_size=pool_size)
        self._reader = self.engine.execution_options(**{_READ: True})
        self._writer = _Writer()
        #: SQLite transactions tried in the event loop: they never wait for the lock.
        self._nowait = make_engine(url, pool_size=2, busy_ms=0) if _file(self.engine) else None
        self._local = threading.local()
        #: Study specs by id: immutable once created, ids never reused.
        self.specs: dict[int, StudySpec] = {}
        #: Small per-process bookkeeping (e.g. when expired leases were last reaped).
        self.cache = ProcessCache()

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may change rows; committed on success, rolled back on error."""
        if self._nowait is None or not getattr(self._local, "in_loop", False):
            with self.engine.begin() as conn:
                yield conn
            return
        with contextlib.ExitStack() as stack:
            try:
                conn = stack.enter_context(self._nowait.begin())
            except OperationalError as error:  # the lock is taken: do not wait for it here
                if "locked" in str(error.orig) or "busy" in str(error.orig):
                    raise NeedsWriter from None
                raise
            yield conn

    def leave_loop(self) -> None:
        """In work tried in the event loop, hand it to the writer thread (before it runs
        long: its transaction rolls back and it runs again there); elsewhere nothing."""
        if getattr(self._local, "in_loop", False):
            raise NeedsWriter

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._reader.connect() as conn:
            yield conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work from an async route; it never waits in the event loop.

        On SQLite `fn` (one write transaction) is tried in the event loop without waiting
        for the lock; when the lock is taken, or `fn` calls `leave_loop` (a tuner ask), the
        writer thread runs it (a lock wait or a long ask then delays other writes but never
        the event loop). On PostgreSQL anyio's worker threads run it, so that concurrent
        requests' transactions overlap.
        """
        if self.dialect != "sqlite":
            return await to_thread.run_sync(partial(fn, *args))
        self._local.in_loop = True
        try:
            return fn(*args)
        except NeedsWriter:
            pass
        finally:
            self._local.in_loop = False
        return await self._writer.submit(asyncio.get_running_loop(), partial(fn, *args))

    def dispose(self) -> None:
        """Stop the writer thread and close every pooled connection."""
        self._writer.stop()
        if self._nowait is not None:
            self._nowait.dispose()
        self.engine.dispose()
