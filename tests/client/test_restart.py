"""`run_trials` outlives a server restart: a real `avatune serve` on a SQLite file is killed
mid-study and started again on the same port; the loop waits it out (leases, heartbeats,
results retried), the restarted server extends the live lease, and the study finishes with
every trial trained and reported once."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from avatune.client import Client, RunSummary, TrialHandle
from tests.client.conftest import FAST, external_study, objective
from tests.service.helpers import ServerProcess, wait_until

LEASE = 3.0


def _done(url: str, study_id: int) -> int:
    try:
        return httpx.get(f"{url}/api/studies/{study_id}", timeout=2).json()["trainings_done"]
    except httpx.TransportError:
        return -1


def test_run_trials_survives_a_server_restart(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="avatune.client")
    first = ServerProcess(sqlite_url, lease_seconds=LEASE, log=tmp_path / "server.log").start()
    second = ServerProcess(sqlite_url, port=first.port, lease_seconds=LEASE, log=first.log)
    try:
        with Client(first.url, backoff=FAST) as client:
            study = client.create_study(external_study(n=3) | {"budget": 9})
            trained: Counter[int] = Counter()
            out: list[RunSummary] = []

            def train(trial: TrialHandle) -> float:
                trained[trial.trial_id] += 1
                time.sleep(0.4)
                return objective(trial.alpha, trial.eps)

            loop = threading.Thread(target=lambda: out.append(client.run_trials(study, train)))
            loop.start()
            assert wait_until(lambda: _done(first.url, study.id) >= 2, 30)
            first.kill()  # SIGKILL mid-study: a trial is leased and training
            time.sleep(1.0)
            assert loop.is_alive()
            second.start()
            loop.join(60)
            assert not loop.is_alive(), "run_trials did not finish after the restart"
            [summary] = out
            final = client.study(study)
            trials = client.study_trials(study)
    finally:
        first.kill()
        second.kill()
    assert final.state == "done" and final.trainings_done == 9, final
    assert summary.ended == "study done" and summary.reported == 9 and summary.refused == 0
    assert {t.state for t in trials} == {"complete"}
    assert trained == {t.id: 1 for t in trials}  # each trained once, each result counted once
    assert any("server unreachable" in r.getMessage() for r in caplog.records), "no outage seen"
