"""Soak on PostgreSQL: 8 fast fake workers finish a 10,000-trial grid study.

Every trial must be complete exactly once with its true value and no lease left; the
throughput is printed (speed targets live in benchmarks/, not here).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.checks import assert_finished_exactly_once, trial_rows
from tests.service.helpers import ServerProcess, grid_study, start_worker, wait_until

pytestmark = pytest.mark.slow

SIDE = 100  # a 100 × 100 grid: 10,000 trials
WORKERS = 8


def test_eight_workers_finish_a_10000_trial_grid(postgres_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    spec = grid_study("soak", n_alpha=SIDE, n_eps=SIDE)
    spec["space"] = {
        "alphas": [10.0 ** (-6 + 8 * k / (SIDE - 1)) for k in range(SIDE)],
        "epsilons": [10.0 ** (-10 + 10 * k / (SIDE - 1)) for k in range(SIDE)],
    }
    with ServerProcess(postgres_url, lease_seconds=30, log=log, workers=2) as server:
        response = httpx.post(f"{server.url}/api/studies", json=spec, timeout=60)
        assert response.status_code == 201, response.text
        study_id = response.json()["id"]
        started = time.monotonic()
        workers = [start_worker(server.url, max_batch=128, fake_seconds=0.0, log=log)
                   for _ in range(WORKERS)]
        try:
            done = wait_until(
                lambda: httpx.get(f"{server.url}/api/studies/{study_id}", timeout=30)
                .json()["state"] == "done", 600, interval=1.0,
            )
            seconds = time.monotonic() - started
            assert done, log.read_text()[-5000:]
            seen = httpx.get(f"{server.url}/api/workers", timeout=30).json()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = []
            for worker in workers:
                try:
                    codes.append(worker.wait(timeout=30))
                except subprocess.TimeoutExpired:
                    worker.kill()
                    codes.append(None)
    assert codes == [0] * WORKERS, log.read_text()[-5000:]
    rows = trial_rows(postgres_url, study_id)
    assert_finished_exactly_once(rows, SIDE * SIDE, max_attempts=1)
    assert len({r.worker_id for r in rows}) == WORKERS, "every worker took part"
    assert sum(w["complete"] for w in seen) == SIDE * SIDE
    print(f"soak: {SIDE * SIDE} trials by {WORKERS} workers in {seconds:.1f} s "
          f"({SIDE * SIDE / seconds:.0f} trials/s)")
