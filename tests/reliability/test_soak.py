"""Soak on PostgreSQL and SQLite: 8 fast fake workers finish a 10,000-trial grid, each trial
trained once; prints the throughput (speed targets live in benchmarks/, not in tests)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.checks import (
    assert_api_agrees,
    assert_finished_exactly_once,
    assert_results_from_holders,
    stop_workers,
    trial_rows,
    worker_rows,
)
from tests.service.helpers import ServerProcess, grid_study, start_worker, wait_until

SIDE = 100  # a 100 × 100 grid: 10,000 trials
WORKERS = 8
MAX_BATCH = 128
#: Long enough that no lease expires on a loaded machine: each trial is leased once.
LEASE_SECONDS = 120

pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]


def _stop(server: ServerProcess) -> None:
    """SIGTERM first: uvicorn's supervisor then stops its API processes (SIGKILL orphans them)."""
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_eight_workers_finish_a_10000_trial_grid(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue(database)
    log = tmp_path / "log.txt"
    spec = grid_study("soak", n_alpha=SIDE, n_eps=SIDE)
    spec["space"] = {  # 100 values per axis (at most 201) over realistic decades
        "alphas": [10.0 ** (-6 + 8 * k / (SIDE - 1)) for k in range(SIDE)],
        "epsilons": [10.0 ** (-10 + 10 * k / (SIDE - 1)) for k in range(SIDE)],
    }
    server = ServerProcess(url, lease_seconds=LEASE_SECONDS, log=log, workers=2).start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        response = httpx.post(f"{server.url}/api/studies", json=spec, timeout=60)
        assert response.status_code == 201, response.text
        study_id = response.json()["id"]
        started = time.monotonic()
        workers = [
            start_worker(server.url, max_batch=MAX_BATCH, fake_seconds=k * 1e-4, log=log)
            for k in range(WORKERS)
        ]  # ~0 s, unique: tags each worker's results
        done = wait_until(
            lambda: (
                httpx.get(f"{server.url}/api/studies/{study_id}", timeout=30).json()["state"]
                == "done"
            ),
            240,
            interval=0.5,
        )
        seconds = time.monotonic() - started
        assert done, log.read_text()[-5000:]
        codes = stop_workers(workers)
        assert codes == [0] * WORKERS, log.read_text()[-5000:]
        rows = trial_rows(url, study_id)
        assert_finished_exactly_once(rows, SIDE * SIDE, max_attempts=1)
        assert_results_from_holders(rows, {w.pid: k * 1e-4 for k, w in enumerate(workers)})
        assert len({r.worker_id for r in rows}) == WORKERS, "a worker took no part"
        workers_table = worker_rows(url)
        assert_api_agrees(server.url, study_id, rows, workers_table)
        # lease counts are written at most once a second: some may be unwritten, none extra
        assert 0 < sum(w.trials_leased for w in workers_table) <= SIDE * SIDE
    finally:
        stop_workers(workers)
        _stop(server)
    print(
        f"\nsoak ({url.split(':')[0]}): {SIDE * SIDE} trials by {WORKERS} workers in "
        f"{seconds:.1f} s ({SIDE * SIDE / seconds:.0f} trials/s)"
    )
