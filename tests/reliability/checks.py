"""What must hold after any run, read straight from the database and from the API: every grid
point finished exactly once with its true value, no lease left, counters that agree."""

from __future__ import annotations

import math
import signal
import subprocess
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.service.fake_training import objective


def _query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def trial_rows(url: str, study_id: int) -> list[Any]:
    """Every trial of the study, as database rows, by number."""
    return _query(
        url,
        "SELECT id, number, state, alpha, eps, i_alpha, j_eps, value, seconds, attempts, "
        "worker_id, lease_token, lease_expires_at, finished_at FROM trials WHERE study_id = :s "
        "ORDER BY number",
        s=study_id,
    )


def worker_rows(url: str) -> list[Any]:
    """Every row of the workers table."""
    return _query(url, "SELECT id, leases, trials_leased FROM workers")


def assert_finished_exactly_once(rows: list[Any], n_points: int, max_attempts: int) -> None:
    """One complete trial per grid point, numbered 0..n-1, right values, no live lease."""
    assert len(rows) == n_points, f"{len(rows)} trials for {n_points} grid points"
    assert [r.number for r in rows] == list(range(n_points))
    assert len({(r.i_alpha, r.j_eps) for r in rows}) == n_points, "a grid point twice"
    states = Counter(r.state for r in rows)
    assert states == {"complete": n_points}, f"states: {dict(states)}"
    for r in rows:
        assert math.isclose(r.value, objective(r.alpha, r.eps), rel_tol=1e-12), r
        assert 1 <= r.attempts <= max_attempts, r
        assert r.lease_token is None and r.lease_expires_at is None, r
        assert r.worker_id is not None and r.finished_at is not None, r


def pid_of(worker_id: str | None) -> int | None:
    """The process id inside a default worker id (host-pid-random)."""
    parts = (worker_id or "").rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def assert_results_from_holders(rows: list[Any], fake_seconds: dict[int, float]) -> None:
    """Each counted result came from the holder of the trial's last lease: every worker
    reports its own `fake_seconds` (by pid), so a stale lease's result would show."""
    for r in rows:
        pid = pid_of(r.worker_id)
        assert pid is not None and pid in fake_seconds, r
        assert math.isclose(r.seconds, fake_seconds[pid], abs_tol=1e-9), (r, fake_seconds[pid])


def assert_api_agrees(server_url: str, study_id: int, rows: list[Any], workers: list[Any]) -> None:
    """The study's and the workers' figures in the API match the trial and worker rows."""
    study = httpx.get(f"{server_url}/api/studies/{study_id}", timeout=30).json()
    n = len(rows)
    assert study["state"] == "done", study
    assert study["counts"] == {"complete": n}, study["counts"]
    assert (study["trainings_proposed"], study["trainings_done"], study["progress"]) == (n, n, 1.0)
    best = min(rows, key=lambda r: r.value)
    assert study["best"]["value"] == best.value, (study["best"], best)
    listed = {w["id"]: w for w in httpx.get(f"{server_url}/api/workers", timeout=30).json()}
    known = {w.id: w for w in workers}
    assert set(listed) == set(known), "the API lists other workers than the table holds"
    completed = Counter(r.worker_id for r in rows)
    assert set(completed) <= set(known), "a trial completed by a worker never recorded"
    for worker_id, worker in listed.items():
        assert worker["active"] == 0 and worker["failed"] == 0, worker
        assert worker["complete"] == completed.get(worker_id, 0), worker
        assert worker["trials_leased"] == known[worker_id].trials_leased, worker


def stop_workers(workers: list[subprocess.Popen[bytes]], timeout: float = 30) -> list[int | None]:
    """SIGTERM every worker and wait; exit codes (None: had to be killed)."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for worker in workers:
        try:
            codes.append(worker.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
            codes.append(None)
    return codes
