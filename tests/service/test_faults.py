"""Faults with real processes: a worker SIGKILLed mid-trial, the server restarted mid-study."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.fake_training import objective
from tests.service.helpers import ServerProcess, grid_study, start_worker, wait_until

pytestmark = pytest.mark.slow


def _get(server: ServerProcess, path: str) -> Any:
    return httpx.get(f"{server.url}{path}", timeout=10).json()


def _trials(server: ServerProcess, study_id: int) -> list[dict[str, Any]]:
    return _get(server, f"/api/studies/{study_id}/trials?limit=5000")["trials"]


def _stop(*workers: subprocess.Popen[bytes]) -> list[int | None]:
    codes = []
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        try:
            codes.append(worker.wait(timeout=15))
        except subprocess.TimeoutExpired:
            worker.kill()
            codes.append(None)
    return codes


def test_sigkilled_worker_trials_are_leased_again_and_completed(
    sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    with ServerProcess(sqlite_url, lease_seconds=2.0, log=log) as server:
        study_id = httpx.post(
            f"{server.url}/api/studies", json=grid_study(n_alpha=3, n_eps=4)
        ).json()["id"]
        doomed = start_worker(server.url, max_batch=3, fake_seconds=30, log=log)
        survivor = None
        try:
            assert wait_until(
                # 3 training, and 3 more once the worker prefetches its next lease
                lambda: sum(t["state"] == "leased" for t in _trials(server, study_id)) >= 3,
                30,
            ), log.read_text()
            leased = [t for t in _trials(server, study_id) if t["state"] == "leased"]
            held, doomed_id = {t["id"] for t in leased}, leased[0]["worker_id"]
            doomed.kill()  # SIGKILL mid-trial: no release, no goodbye
            doomed.wait(timeout=10)
            survivor = start_worker(server.url, max_batch=4, fake_seconds=0.05, log=log)
            done = wait_until(
                lambda: _get(server, f"/api/studies/{study_id}")["state"] == "done", 60
            )
            assert done, log.read_text()
            trials = _trials(server, study_id)
        finally:
            codes = _stop(*(w for w in (doomed, survivor) if w is not None))
    assert codes[-1] == 0  # SIGTERM: a clean exit
    assert len(trials) == 12 and {t["state"] for t in trials} == {"complete"}
    for trial in trials:
        assert trial["value"] == pytest.approx(objective(trial["alpha"], trial["eps"]))
        if trial["id"] in held:
            assert trial["attempts"] == 2 and trial["worker_id"] != doomed_id


def test_server_restart_mid_study_loses_and_duplicates_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    server = ServerProcess(sqlite_url, lease_seconds=2.0, log=log).start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        study_id = httpx.post(
            f"{server.url}/api/studies", json=grid_study(n_alpha=5, n_eps=5)
        ).json()["id"]
        workers = [
            start_worker(server.url, max_batch=2, fake_seconds=0.3, log=log) for _ in range(2)
        ]
        assert wait_until(
            lambda: _get(server, f"/api/studies/{study_id}")["counts"].get("complete", 0) >= 6,
            60,
        ), log.read_text()
        server.kill()
        subprocess.run(["sleep", "1"], check=True)  # workers keep training, then retry
        server = ServerProcess(sqlite_url, port=server.port, lease_seconds=2.0, log=log).start()
        done = wait_until(lambda: _get(server, f"/api/studies/{study_id}")["state"] == "done", 90)
        assert done, log.read_text()
        trials = _trials(server, study_id)
        codes = _stop(*workers)
    finally:
        _stop(*workers)
        server.kill()
    assert codes == [0, 0]
    assert len(trials) == 25 and {t["state"] for t in trials} == {"complete"}
    assert len({(t["i_alpha"], t["j_eps"]) for t in trials}) == 25
    for trial in trials:
        assert trial["value"] == pytest.approx(objective(trial["alpha"], trial["eps"]))
