"""The event loop stays free on SQLite: a lease waiting on the write lock, or a slow tuner
ask, never delays `/healthz` (which itself needs no write lock)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from service import tuning
from tests.service.helpers import ThreadServer, app_for, grid_study

#: How long `/healthz` may take while a lease call is stuck.
HEALTHZ_LIMIT_S = 0.1


@contextmanager
def _server(url: str) -> Iterator[str]:
    with ThreadServer(app_for(url)) as server:
        yield server.url


def _lease(base: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/api/leases", json={"worker_id": "w", "max_trials": 1}, timeout=60
    )
    response.raise_for_status()
    return response.json()


def _healthz_times(base: str, n: int = 5) -> list[float]:
    """Seconds each of `n` `/healthz` calls took (one keep-alive client, as a prober has)."""
    times = []
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/healthz")  # connect first: time the answers, not the handshakes
        for _ in range(n):
            start = time.perf_counter()
            response = client.get("/healthz")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "ok", "database": "sqlite"}
            time.sleep(0.02)
    return times


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_healthz_answers_while_a_lease_waits_on_the_write_lock(sqlite_url: str) -> None:
    with _server(sqlite_url) as base, ThreadPoolExecutor(1) as pool:
        assert httpx.post(f"{base}/api/studies", json=grid_study()).status_code == 201
        holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection
        try:
            leasing: Future[dict[str, Any]] = pool.submit(_lease, base)
            time.sleep(0.3)  # the lease call is now waiting on the lock
            assert not leasing.done()
            times = _healthz_times(base)
            assert not leasing.done(), "the lease call did wait on the lock"
        finally:
            holder.execute("COMMIT")
            holder.close()
        assert len(leasing.result(timeout=30)["trials"]) == 1
    assert max(times) < HEALTHZ_LIMIT_S, times


def test_healthz_answers_while_a_tuner_ask_is_slow(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asking = threading.Event()
    real = tuning.propose

    def slow_propose(*args: Any, **kwargs: Any) -> Any:
        asking.set()
        end = time.perf_counter() + 1.5
        while time.perf_counter() < end:  # busy, holding the GIL as a TPE ask does
            sum(range(1000))
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "propose", slow_propose)
    spec = grid_study(n_alpha=5, n_eps=5, tuner={"name": "tpe", "seed": 1}, budget=4)
    with _server(sqlite_url) as base, ThreadPoolExecutor(1) as pool:
        assert httpx.post(f"{base}/api/studies", json=spec).status_code == 201
        leasing = pool.submit(_lease, base)
        _wait_until(asking.is_set)
        times = _healthz_times(base)
        assert not leasing.done(), "the tuner ask did last while /healthz was timed"
        assert len(leasing.result(timeout=30)["trials"]) == 1
    assert max(times) < HEALTHZ_LIMIT_S, times
