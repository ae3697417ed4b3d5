"""Worker logs: a line per lease (trials, task, seconds, counts, best) without a terminal,
the same line above the progress bars on one, and `worker --log-*` options."""

from __future__ import annotations

import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from avatune.lease_client import Backoff, ServiceClient
from studies.protocol import LeaseResponse
from tests.service.fake_training import objective
from tests.service.fake_training import train as fake_train
from tests.service.helpers import (
    FAKE_TRAINER,
    ROOT,
    ThreadServer,
    _env,
    app_for,
    grid_study,
    wait_until,
)
from workers.lease_training import Outcome, ProgressFn
from workers.loop import WorkerLoop

WORKER = "import typer; from workers.cli import worker; typer.run(worker)"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ThreadServer]:
    with ThreadServer(app_for(sqlite_url, lease_seconds=30)) as running:
        yield running


def _study(url: str, **options: Any) -> int:
    response = httpx.post(f"{url}/api/studies", json=grid_study(**options))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _done(url: str, sid: int) -> bool:
    return httpx.get(f"{url}/api/studies/{sid}").json()["state"] == "done"


def _worker(url: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", WORKER, "--server", url, "--train-function", FAKE_TRAINER]
    return subprocess.Popen(
        [*command, *args],
        cwd=ROOT,
        env=_env({"AVATUNE_FAKE_SECONDS": "0.05"}),
        text=True,
        **popen,
    )


def test_without_a_terminal_one_json_line_per_lease(server: ThreadServer) -> None:
    """stderr a pipe (as under nohup), no --quiet: plain lines, one per lease, right counts."""
    sid = _study(server.url, n_alpha=3, n_eps=5)  # 15 trials, leases of at most 4
    worker = _worker(server.url, "--max-batch", "4", "--log-format", "json", stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: _done(server.url, sid), 60)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]  # all JSON
    assert "\x1b[" not in err  # no progress bars
    leases = [e for e in entries if e["msg"].startswith("lease ")]
    assert [e["trials"] for e in leases] == [4, 4, 4, 3]
    alphas = [10.0 ** (-4 + k) for k in range(3)]
    epsilons = [10.0 ** (-8 + k) for k in range(5)]
    for entry in leases:
        assert entry["logger"] == "avatune.worker" and entry["level"] == "info"
        assert entry["task"] == "mnist1d-mlp" and entry["optimizers"] == ["adam"]
        assert (entry["complete"], entry["diverged"], entry["failed"]) == (entry["trials"], 0, 0)
        assert len(entry["lease"]) == 8 and entry["seconds"] >= 0.05
        assert entry["best"] >= min(objective(a, e) for a in alphas for e in epsilons)
        assert entry["msg"].endswith(
            f"{entry['trials']} complete, 0 diverged, 0 failed; best {entry['best']:.4g}"
        )
    best = min(e["best"] for e in leases)
    assert best == httpx.get(f"{server.url}/api/studies/{sid}").json()["best"]["value"]
    summary = entries[-1]
    assert (summary["leases"], summary["delivered"], summary["failed"]) == (4, 15, 0)


def test_on_a_terminal_the_progress_bars_stay_and_the_lease_line_shows(
    server: ThreadServer,
) -> None:
    sid = _study(server.url, n_alpha=2, n_eps=1)
    leader, follower = pty.openpty()
    worker = _worker(server.url, "--max-batch", "2", stderr=follower, stdout=subprocess.DEVNULL)
    os.close(follower)
    out = b""
    stopping = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the worker exited and closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif worker.poll() is not None:
                break
            if not stopping and _done(server.url, sid):
                worker.send_signal(signal.SIGTERM)
                stopping = True
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=30)
        os.close(leader)
    text = " ".join(out.decode(errors="replace").replace("\r\n", " ").split())
    assert "\x1b[" in text and "100%" in text  # the rich bars
    assert "avatune.worker: lease " in text and "2 trials" in text
    assert "2 complete, 0 diverged, 0 failed" in text


def _loop(url: str, trainer: Any) -> WorkerLoop:
    client = ServiceClient(url, backoff=Backoff(first=0.05, cap=0.2))
    return WorkerLoop(client, trainer, worker_id="logs-1", max_batch=8, once=True)


def _lease_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "avatune.worker" and hasattr(r, "complete")]


def test_diverged_and_failed_trials_are_counted(
    server: ThreadServer, caplog: pytest.LogCaptureFixture
) -> None:
    _study(server.url, n_alpha=2, n_eps=2)

    def mixed(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        outcomes = fake_train(lease, progress)
        outcomes[0].diverged = True
        outcomes[1].value = float("nan")  # an invalid result: that trial fails
        return outcomes

    with caplog.at_level(logging.INFO, logger="avatune.worker"):
        _loop(server.url, mixed).run()
    (record,) = _lease_records(caplog)
    counts = (record.trials, record.complete, record.diverged, record.failed)  # type: ignore[attr-defined]
    assert counts == (4, 2, 1, 1)


def test_a_failing_trainer_fails_every_trial_of_the_lease(
    server: ThreadServer, caplog: pytest.LogCaptureFixture
) -> None:
    _study(server.url, n_alpha=3, n_eps=1)

    def broken(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        raise RuntimeError("out of memory")

    with caplog.at_level(logging.INFO, logger="avatune.worker"):
        _loop(server.url, broken).run()
    (record,) = _lease_records(caplog)
    assert (record.complete, record.failed, record.best) == (0, 3, None)  # type: ignore[attr-defined]
    assert "training failed: RuntimeError: out of memory" in caplog.text


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--log-level", "verbose"], {}),
        (["--log-format", "xml"], {}),
        ([], {"AVATUNE_LOG_FORMAT": "x"}),
    ],
)
def test_invalid_log_options_are_usage_errors(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.cli import worker

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = typer.Typer()
    app.command()(worker)
    result = CliRunner().invoke(app, ["--server", "http://127.0.0.1:9", *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and "log-" in result.output
