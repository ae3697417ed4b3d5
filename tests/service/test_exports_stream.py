"""Exports stream in constant memory: the same bytes as the whole rendering (SQLite and
PostgreSQL, over many pages), and a real server's peak RSS stays bounded while several
clients download a 2 000-trial study with 1 000-point curves at once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from service import export
from service.db import Database
from service.models import Trial, TrialState, utcnow
from service.repositories import studies, trials
from studies.specs import StudySpec
from tests.service.helpers import ServerProcess, app_for, grid_study

#: The large study: trainings, points per curve, concurrent downloads, allowed RSS growth.
LARGE_TRIALS = 2_000
CURVE_POINTS = 1_000
CLIENTS = 6
MAX_GROWTH_MB = 200


def _whole(db: Database, study_id: int) -> tuple[bytes, str]:
    """The JSON and CSV exports rendered whole from one transaction (the former routes)."""
    with db.read() as conn:
        study = studies.get_study(conn, study_id)
        everything = trials.all_trials(conn, study_id, repeats=True)
        trainings = trials.all_trials(conn, study_id, curves=False)
    return JSONResponse(export.to_json(study, everything)).body, export.to_csv(trainings)


def _run_with_curves(client: TestClient) -> None:
    """Lease and report every trial, with a curve and per-seed values, until none is left."""
    while True:
        lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 3}).json()
        if not lease["trials"]:
            return
        for trial in lease["trials"]:
            value = trial["alpha"] * 1000 + trial["eps"]
            result = {
                "token": lease["token"],
                "value": value,
                "curve": [value * (1 + 1 / (k + 1)) for k in range(5)],
                "seed_values": [value, value],
            }
            response = client.post(f"/api/trials/{trial['trial_id']}/result", json=result)
            assert response.status_code == 200, response.text


def test_streamed_exports_equal_the_whole_rendering(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PAGE_SIZE", 2)  # many pages: every seam is crossed
    app = app_for(database_url)
    with TestClient(app) as client:
        spec = grid_study(n_alpha=3, n_eps=3, tuner={"name": "gld", "seed": 1}, budget=9)
        sid = client.post("/api/studies", json=spec).json()["id"]
        _run_with_curves(client)
        queued = client.post("/api/studies", json=grid_study("é α ε ☃", n_alpha=1, n_eps=1))
        for study_id in (sid, queued.json()["id"]):
            whole_json, whole_csv = _whole(app.state.db, study_id)
            streamed = client.get(f"/api/studies/{study_id}/export.json")
            assert streamed.status_code == 200
            assert streamed.headers["content-type"] == "application/json"
            assert streamed.headers["content-disposition"].endswith(f'study-{study_id}.json"')
            assert streamed.content == whole_json
            text = client.get(f"/api/studies/{study_id}/export.csv")
            assert text.headers["content-type"].startswith("text/csv")
            assert text.text == whole_csv
        data = client.get(f"/api/studies/{sid}/export.json").json()
        assert len(data["trainings"]) == 9 and data["repeats"], "GLD revisits points"
        assert all(len(t["curve"]) == 5 for t in data["trainings"])
        assert client.get("/api/studies/999/export.json").status_code == 404
        assert client.get("/api/studies/999/export.csv").status_code == 404


def test_an_export_holds_the_trials_there_were_when_it_started(sqlite_url: str) -> None:
    """Trials proposed during a download are left out (no half-listed new trials)."""
    app = app_for(sqlite_url)
    db: Database = app.state.db
    with db.write() as conn:
        sid = studies.create_study(conn, StudySpec.model_validate(grid_study()), utcnow())
    with db.read() as conn:
        study = studies.get_study(conn, sid)
        upto = trials.last_number(conn, sid)
    chunks = export.json_chunks(db, study, upto)
    head = next(chunks)
    with db.write() as conn:  # the tuner proposes another point meanwhile
        conn.execute(
            insert(Trial).values(
                study_id=sid,
                number=upto + 1,
                training=upto + 1,
                state=TrialState.queued,
                alpha=1.0,
                eps=1.0,
                params={},
                batch_key="late",
                created_at=utcnow(),
            )
        )
    data = json.loads(head + "".join(chunks))
    assert [t["number"] for t in data["trainings"]] == list(range(upto + 1))
    with db.read() as conn:
        assert trials.last_number(conn, sid) == upto + 1


def _large_study(url: str) -> int:
    """A 2 000-point grid study whose every training is complete with a 1 000-point curve,
    written straight into the database (one bulk update)."""
    db = Database(url, pool_size=1)
    n_alpha = 40
    spec = grid_study("large", n_alpha=n_alpha, n_eps=LARGE_TRIALS // n_alpha)
    spec["space"]["alphas"] = [10.0 ** (-6 + 0.1 * k) for k in range(n_alpha)]
    spec["space"]["epsilons"] = [10.0 ** (-10 + 0.1 * k) for k in range(LARGE_TRIALS // n_alpha)]
    curve = [1.0 / (k + 1) + k * 1e-7 for k in range(CURVE_POINTS)]
    with db.write() as conn:
        sid = studies.create_study(conn, StudySpec.model_validate(spec), utcnow())
        conn.execute(
            update(Trial)
            .where(Trial.study_id == sid)
            .values(
                state=TrialState.complete,
                value=Trial.alpha * 1000 + Trial.eps,
                curve=curve,
                seed_values=[0.5, 0.25, 0.125],
                seconds=1.5,
                attempts=1,
                worker_id="bulk",
                finished_at=utcnow(),
            )
        )
    db.dispose()
    return sid


def _status_kb(pid: int, field: str) -> int:
    """A memory figure of process `pid` from /proc (VmRSS, VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


class PeakRss:
    """The peak RSS of a process over a block: the kernel's VmHWM after resetting it, and
    sampled VmRSS besides (for kernels that refuse the reset)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sampled = 0
        self.reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sampled = max(self.sampled, _status_kb(self.pid, "VmRSS"))
            self._stop.wait(0.01)

    def __enter__(self) -> PeakRss:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            self.reset = True
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_kb(self) -> int:
        """The highest RSS seen, in kB."""
        return max(self.sampled, _status_kb(self.pid, "VmHWM") if self.reset else 0)


def _download(url: str, into: list[Any], keep: bool) -> None:
    """Read one export to the end (keeping the bytes only when `keep`)."""
    size, kept = 0, bytearray()
    with httpx.stream("GET", url, timeout=300) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            size += len(chunk)
            if keep:
                kept += chunk
    into.append((size, bytes(kept)))


@pytest.fixture
def large_server(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, int]]:
    sid = _large_study(sqlite_url)
    with ServerProcess(sqlite_url, log=tmp_path / "server.log") as server:
        yield server, sid


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_concurrent_large_exports_stay_in_bounded_memory(
    large_server: tuple[ServerProcess, int],
) -> None:
    server, sid = large_server
    assert server.process is not None
    pid = server.process.pid
    base = f"{server.url}/api/studies/{sid}"
    started_kb = _status_kb(pid, "VmRSS")
    warm: list[Any] = []
    _download(f"{base}/export.csv", warm, keep=False)  # first requests import lazily
    before_kb = _status_kb(pid, "VmRSS")
    results: list[Any] = []
    threads = [
        threading.Thread(target=_download, args=(f"{base}/export.json", results, k == 0))
        for k in range(CLIENTS)
    ]
    threads.append(threading.Thread(target=_download, args=(f"{base}/export.csv", results, False)))
    began = time.monotonic()
    with PeakRss(pid) as peak:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds = time.monotonic() - began
    growth_mb = (peak.peak_kb - before_kb) / 1024
    report = (
        f"server RSS {started_kb / 1024:.0f} MB at start, {before_kb / 1024:.0f} MB before, "
        f"peak {peak.peak_kb / 1024:.0f} MB during {CLIENTS} JSON + 1 CSV exports "
        f"({seconds:.1f} s): +{growth_mb:.0f} MB"
    )
    print(report)
    assert len(results) == CLIENTS + 1
    sizes = sorted(size for size, _ in results)
    assert sizes[-1] > LARGE_TRIALS * CURVE_POINTS * 10  # the curves were in it
    data = json.loads(next(kept for _, kept in results if kept))
    assert len(data["trainings"]) == LARGE_TRIALS and data["repeats"] == []
    assert len(data["trainings"][-1]["curve"]) == CURVE_POINTS
    assert growth_mb < MAX_GROWTH_MB, report
