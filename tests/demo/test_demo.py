"""`avatune demo --quick`: real server, real workers, real training; report, resume, Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from studies.specs import SPECS_DIR

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _demo(
    data_dir: Path, port: int, *extra: str, spec: tuple[str, ...] = ("--quick",)
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "studies",
        "demo",
        *spec,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--workers",
        "1",
        *extra,
    ]


def _children_of(data_dir: Path) -> list[int]:
    """Processes whose command line names this demo's data dir (its server) or port."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(data_dir) in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def test_quick_demo_prints_the_report_then_a_rerun_resumes(tmp_path: Path) -> None:
    port = _free_port()
    first = subprocess.run(
        _demo(tmp_path, port, "--exit"),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "submitted experiment 1" in first.stdout
    assert "Verdict." in first.stdout and "interaction" in first.stdout
    assert f"http://127.0.0.1:{port}/experiments/1" in first.stdout
    report_dir = tmp_path / "reports" / "1"
    metrics = json.loads((report_dir / "metrics.json").read_text())
    assert set(metrics["tables"]) == {"adam", "avagrad"}
    assert all(metrics["tables"][n]["shape"] == [11, 11] for n in ("adam", "avagrad"))
    assert (report_dir / "figure1_heatmaps.png").stat().st_size > 1000
    assert not _children_of(tmp_path), "the demo left processes running"

    again = subprocess.run(  # the same experiment named by its spec file resumes too
        _demo(tmp_path, port, "--exit", spec=("--spec", str(SPECS_DIR / "quick-mnist1d.yaml"))),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming experiment 1" in again.stdout and "local worker" not in again.stdout
    assert "Verdict." in again.stdout


def test_ctrl_c_stops_every_process_and_the_rerun_resumes(tmp_path: Path) -> None:
    port = _free_port()
    demo = subprocess.Popen(
        _demo(tmp_path, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, finished = time.monotonic() + 120, 0
        while time.monotonic() < deadline and finished == 0:
            time.sleep(0.5)
            try:
                studies = httpx.get(f"{url}/api/studies", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                continue
            finished = sum(s["trainings_done"] for s in studies)
        assert finished > 0, "no trial finished within two minutes"
        assert len(_children_of(tmp_path)) >= 1
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            for pid in _children_of(tmp_path):  # its orphans, so no failure leaks processes
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert demo.returncode == 130, out  # 128 + SIGINT, after stopping every child
    assert "run `avatune demo` again to resume" in out
    assert not _children_of(tmp_path), "Ctrl-C left processes running"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=2)

    rerun = subprocess.run(
        _demo(tmp_path, port, "--exit"), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming experiment 1" in rerun.stdout and "Verdict." in rerun.stdout
    with sqlite3.connect(tmp_path / "avatune.db") as db:
        counts = db.execute(
            "SELECT study_id, count(*), count(DISTINCT alpha || ' ' || eps) FROM trials "
            "WHERE state IN ('complete', 'diverged') GROUP BY study_id"
        ).fetchall()
        unfinished = db.execute(
            "SELECT count(*) FROM trials WHERE state NOT IN ('complete', 'diverged')"
        ).fetchone()[0]
    assert sorted(c[1:] for c in counts) == [(121, 121), (121, 121)]
    assert unfinished == 0
