"""A lease's expiry counts from its commit: a lease call that waited on a lock longer than
the lease lasts still hands out a live lease, and its first result is taken."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from sqlalchemy import create_engine, text

from tests.service.helpers import ThreadServer, app_for, grid_study

LEASE_SECONDS = 3.0
HOLD_SECONDS = 4.0


@contextmanager
def _held(url: str, seconds: float) -> Iterator[threading.Thread]:
    """Hold what a lease call needs, from another connection, for `seconds`: the SQLite
    write lock (``BEGIN IMMEDIATE``), or on PostgreSQL the row of worker ``w``."""
    locked = threading.Event()

    def hold() -> None:
        if url.startswith("sqlite"):
            conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(seconds)
            conn.execute("COMMIT")
            conn.close()
            return
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT id FROM workers WHERE id = 'w' FOR UPDATE")).all()
                locked.set()
                time.sleep(seconds)
        finally:
            engine.dispose()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert locked.wait(10)
    try:
        yield thread
    finally:
        thread.join(timeout=30)


def _add_worker(url: str) -> None:
    """The row of worker ``w`` (a lease call writes it: on PostgreSQL it waits for its lock)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO workers (id, first_seen, last_seen, leases, trials_leased) "
                    "VALUES ('w', :now, :now, 0, 0)"
                ),
                {"now": datetime.now(UTC)},
            )
    finally:
        engine.dispose()


def test_a_lease_that_waited_on_a_lock_is_live_when_it_arrives(database_url: str) -> None:
    app = app_for(database_url, lease_seconds=LEASE_SECONDS)
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/api/studies", json=grid_study()).status_code == 201
        _add_worker(database_url)
        with _held(database_url, HOLD_SECONDS):
            started = time.monotonic()
            lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 1})
            waited = time.monotonic() - started
        assert lease.status_code == 200, lease.text
        assert waited > LEASE_SECONDS, "the lease call did wait longer than a lease lasts"
        got = lease.json()
        trial = got["trials"][0]
        left = datetime.fromisoformat(got["expires_at"]) - datetime.now(UTC)
        assert left.total_seconds() > LEASE_SECONDS - 1.0
        result = client.post(
            f"/api/trials/{trial['trial_id']}/result", json={"token": got["token"], "value": 1.0}
        )
        assert result.status_code == 200, result.text
        assert result.json()["state"] == "complete"
