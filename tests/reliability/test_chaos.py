"""Chaos on PostgreSQL for a whole study: workers SIGKILLed or frozen past their lease, the
server killed or stopped and restarted, or frozen past every lease, a study deleted under a
worker's lease; nothing may be lost, duplicated or left leased."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.checks import (
    assert_api_agrees,
    assert_finished_exactly_once,
    assert_results_from_holders,
    pid_of,
    stop_workers,
    trial_rows,
    worker_rows,
)
from tests.service.helpers import ServerProcess, grid_study, start_worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

N_ALPHA, N_EPS = 12, 12
WORKERS = 4
MAX_BATCH = 3
FAKE_SECONDS = 1.5  # as long as a lease: only heartbeats keep a lease alive
LEASE_SECONDS = 1.5
#: Share of chaos rounds that freeze a worker past its lease instead of killing it.
FREEZE_SHARE = 0.3
#: At most this many workers are ever frozen (they are never killed: they must report).
MAX_FROZEN = 2
MAX_ATTEMPTS = 20  # kills and outages cost attempts; a trial must not run out of them
#: Completed fractions at which the server goes down (one outage in each band).
OUTAGE_BANDS = ((0.1, 0.3), (0.35, 0.55), (0.6, 0.8))


def _study(url: str, study_id: int) -> dict[str, Any]:
    return httpx.get(f"{url}/api/studies/{study_id}", timeout=10).json()


def _leased(url: str, study_id: int) -> list[dict[str, Any]]:
    page = httpx.get(
        f"{url}/api/studies/{study_id}/trials",
        params={"state": "leased", "limit": 5000},
        timeout=10,
    )
    return page.json()["trials"]


def _seen_pids(url: str) -> set[int | None]:
    """Process ids of the workers that have asked the server for trials."""
    return {pid_of(w["id"]) for w in httpx.get(f"{url}/api/workers", timeout=10).json()}


def _freeze(worker: subprocess.Popen[bytes], url: str, study_id: int) -> dict[int, int]:
    """SIGSTOP a worker; return the trials it holds, with their attempts."""
    worker.send_signal(signal.SIGSTOP)
    time.sleep(0.3)  # let a request it had already sent land before looking
    return {
        t["id"]: t["attempts"]
        for t in _leased(url, study_id)
        if pid_of(t["worker_id"]) == worker.pid
    }


def _expired(url: str, study_id: int, held: dict[int, int], pid: int) -> set[int]:
    """Held trials whose lease expired: not those whose result landed just as it froze."""
    page = httpx.get(f"{url}/api/studies/{study_id}/trials", params={"limit": 5000}, timeout=10)
    now = {t["id"]: t for t in page.json()["trials"]}
    return {
        i
        for i, a in held.items()
        if not (
            now[i]["state"] in ("complete", "diverged")
            and now[i]["attempts"] == a
            and pid_of(now[i]["worker_id"]) == pid
        )
    }


def _lease_gone(url: str, study_id: int, held: dict[int, int]) -> bool:
    """Whether each held trial's lease was reaped (queued again) or replaced by a new one."""
    page = httpx.get(f"{url}/api/studies/{study_id}/trials", params={"limit": 5000}, timeout=10)
    now = {t["id"]: t for t in page.json()["trials"]}
    return all(now[i]["state"] != "leased" or now[i]["attempts"] > a for i, a in held.items())


def _drops(log: Path) -> dict[int, int]:
    """Trials each worker that exited cleanly dropped on a 404/409, by pid (its summary)."""
    found = re.findall(r"worker \S+-(\d+)-[0-9a-f]+: .*? (\d+) dropped", log.read_text())
    return {int(pid): int(n) for pid, n in found}


def _outage(server: ServerProcess, rng: random.Random, url: str, log: Path) -> ServerProcess:
    """Stop the server (SIGKILL or SIGTERM), stay down past a lease, start it again."""
    assert server.process is not None
    how = rng.choice(["SIGKILL", "SIGTERM"])
    if how == "SIGKILL":
        server.kill()  # no shutdown: in-flight requests cut off
    else:
        server.process.terminate()  # graceful: uvicorn finishes requests, then re-raises
        assert server.process.wait(timeout=30) == -signal.SIGTERM
    down = rng.uniform(0.5, 2.5)
    print(f"  server stopped by {how}, down for {down:.1f} s")
    time.sleep(down)
    return ServerProcess(url, port=server.port, lease_seconds=LEASE_SECONDS, log=log).start()


def test_kills_freezes_and_restarts_lose_and_duplicate_nothing(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = int(os.environ.get("AVATUNE_CHAOS_SEED", random.randrange(10**6)))
    print(f"\nchaos seed {seed} (rerun with AVATUNE_CHAOS_SEED={seed})")
    rng = random.Random(seed)
    outages = [rng.uniform(*band) for band in OUTAGE_BANDS]
    monkeypatch.setenv("AVATUNE_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    log = tmp_path / "log.txt"
    n = N_ALPHA * N_EPS

    fake_seconds: dict[int, float] = {}  # pid → its training time, unique: tags its results

    def new_worker() -> subprocess.Popen[bytes]:
        seconds = FAKE_SECONDS + len(fake_seconds) * 1e-4
        worker = start_worker(server.url, max_batch=MAX_BATCH, fake_seconds=seconds, log=log)
        fake_seconds[worker.pid] = seconds
        return worker

    server = ServerProcess(postgres_url, lease_seconds=LEASE_SECONDS, log=log).start()
    workers: list[subprocess.Popen[bytes]] = []
    orphaned: dict[int, int] = {}  # trial id → pid of the worker killed holding it
    late: dict[int, set[int]] = {}  # pid of a worker frozen past its lease → trials it held
    kills = 0
    last_resume = 0.0  # when a frozen worker was last let go
    try:
        study_id = httpx.post(
            f"{server.url}/api/studies", json=grid_study(n_alpha=N_ALPHA, n_eps=N_EPS)
        ).json()["id"]
        started = time.monotonic()
        workers = [new_worker() for _ in range(WORKERS)]
        while (study := _study(server.url, study_id))["state"] != "done":
            assert time.monotonic() - started < 180, log.read_text()[-5000:]
            if outages and study["trainings_done"] >= outages[0] * n:
                outages.pop(0)
                server = _outage(server, rng, postgres_url, log)
                continue
            time.sleep(rng.uniform(0.8, 2.0))
            killable = [w for w in workers if w.pid not in late]  # frozen ones must report
            if rng.random() < FREEZE_SHARE or (not late and kills >= 2):
                victim = rng.choice(
                    workers if len(late) < MAX_FROZEN else [w for w in workers if w.pid in late]
                )
                held = _freeze(victim, server.url, study_id)
                time.sleep(rng.uniform(LEASE_SECONDS + 1.0, LEASE_SECONDS + 2.0))
                victim.send_signal(signal.SIGCONT)  # its lease has expired meanwhile
                last_resume = time.monotonic()
                if held:
                    # once reaped, that lease is dead for good (even across a restart)
                    assert wait_until(partial(_lease_gone, server.url, study_id, held), 15)
                    if expired := _expired(server.url, study_id, held, victim.pid):
                        late.setdefault(victim.pid, set()).update(expired)
                continue
            victim = rng.choice(killable)
            held = _freeze(victim, server.url, study_id)
            victim.kill()  # no release, no goodbye
            victim.wait(timeout=10)
            workers.remove(victim)
            orphaned.update(dict.fromkeys(held, victim.pid))
            kills += 1
            workers.append(new_worker())
        seconds = time.monotonic() - started
        assert not outages, "the study finished before every outage"
        assert orphaned and late, "no kill or freeze hit a held trial: the test proved nothing"
        assert not _leased(server.url, study_id)
        # a worker still starting up has no SIGTERM handler yet: wait until each has asked
        assert wait_until(lambda: {w.pid for w in workers} <= _seen_pids(server.url), 30)
        # a worker resumed last finishes its stale training, then drops its refused result
        time.sleep(max(0.0, last_resume + FAKE_SECONDS + 1.0 - time.monotonic()))
        codes = stop_workers(workers)
        rows = trial_rows(postgres_url, study_id)
        assert_finished_exactly_once(rows, n, MAX_ATTEMPTS)
        assert_results_from_holders(rows, fake_seconds)
        assert_api_agrees(server.url, study_id, rows, worker_rows(postgres_url))
    finally:
        stop_workers(workers)
        server.kill()
    assert codes == [0] * WORKERS, log.read_text()[-5000:]
    by_id = {r.id: r for r in rows}
    for trial_id, pid in orphaned.items():
        row = by_id[trial_id]
        assert row.attempts >= 2 and pid_of(row.worker_id) != pid, row
    dropped = _drops(log)
    for pid, trials in late.items():  # a late beat or result is refused: dropped, leased again
        assert dropped.get(pid, 0) >= len(trials), (pid, dropped)
        assert all(by_id[i].attempts >= 2 for i in trials), [by_id[i] for i in trials]
    # Each lease of a trial counts one attempt (no release here: kills are SIGKILL). The
    # workers' lease counts are written at most once a second, so a killed server or a
    # killed worker can leave some unwritten: never more than the attempts, though.
    attempts = sum(r.attempts for r in rows)
    leased = sum(w.trials_leased for w in worker_rows(postgres_url))
    assert 0 < leased <= attempts
    print(
        f"chaos: {n} trials in {seconds:.1f} s, {kills} workers killed holding "
        f"{len(orphaned)} trials, {len(late)} frozen past their lease holding "
        f"{sum(map(len, late.values()))} trials ({sum(dropped.values())} trials dropped "
        f"late), {len(OUTAGE_BANDS)} server outages; {attempts} attempts, at most "
        f"{max(r.attempts for r in rows)} a trial ({leased} counted by the workers table)"
    )


def _create(url: str, spec: dict[str, Any]) -> int:
    """Create a study; its id."""
    response = httpx.post(f"{url}/api/studies", json=spec, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _shared_lease(db_url: str, first: int, second: int) -> bool:
    """Whether one lease token holds trials of both studies."""
    tokens = [
        {r.lease_token for r in trial_rows(db_url, s) if r.state == "leased"}
        for s in (first, second)
    ]
    return bool(tokens[0] & tokens[1])


def test_deleting_a_study_mid_lease_drops_only_its_trials(
    postgres_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    seconds = 2 * LEASE_SECONDS  # a lease's training outlives it: only heartbeats keep it
    server = ServerProcess(postgres_url, lease_seconds=LEASE_SECONDS, log=log).start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        doomed = _create(server.url, grid_study("doomed", n_alpha=1, n_eps=2))
        kept = _create(server.url, grid_study("kept", n_alpha=3, n_eps=3))
        # the first lease: both trials of `doomed` first (lowest ids), then two of `kept`
        worker = start_worker(server.url, max_batch=4, fake_seconds=seconds, log=log)
        assert wait_until(partial(_shared_lease, postgres_url, doomed, kept), 30), log.read_text()
        held = {r.id for r in trial_rows(postgres_url, doomed)}
        assert httpx.delete(f"{server.url}/api/studies/{doomed}", timeout=30).status_code == 204
        done = wait_until(lambda: _study(server.url, kept)["state"] == "done", 60)
        assert done and worker.poll() is None, log.read_text()[-5000:]
        rows = trial_rows(postgres_url, kept)
        assert_finished_exactly_once(rows, 9, max_attempts=1)  # no lease of `kept` expired
        assert_results_from_holders(rows, {worker.pid: seconds})
        assert_api_agrees(server.url, kept, rows, worker_rows(postgres_url))
        assert not trial_rows(postgres_url, doomed)
        assert httpx.get(f"{server.url}/api/studies/{doomed}", timeout=30).status_code == 404
        after = _create(server.url, grid_study("after", n_alpha=1, n_eps=1))  # still working
        assert wait_until(lambda: _study(server.url, after)["state"] == "done", 30)
        codes = stop_workers([worker])
    finally:
        stop_workers([worker] if worker else [])
        server.kill()
    text = log.read_text()
    assert codes == [0], text[-5000:]
    drops = re.findall(r"trial (\d+) dropped: the server refused its (\w+) \(404: ", text)
    assert sorted(int(t) for t, _ in drops) == sorted(held), text[-5000:]  # each one once
    assert "heartbeat" in {call for _, call in drops}  # the lease's first trial was doomed
    assert _drops(log) == {worker.pid: len(held)}
    assert "Traceback" not in text


def _held(db_url: str, study_id: int) -> dict[int, tuple[int, int | None]]:
    """The study's leased trials (from the database): id → (attempts, holder's pid)."""
    return {
        r.id: (r.attempts, pid_of(r.worker_id))
        for r in trial_rows(db_url, study_id)
        if r.state == "leased"
    }


def test_a_server_frozen_past_every_lease_loses_and_duplicates_nothing(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVATUNE_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    log = tmp_path / "log.txt"
    side, n = 6, 36
    server = ServerProcess(postgres_url, lease_seconds=LEASE_SECONDS, log=log).start()
    assert server.process is not None
    workers: list[subprocess.Popen[bytes]] = []
    fake_seconds: dict[int, float] = {}  # pid → its training time, unique: tags its results
    held: dict[int, tuple[int, int | None]] = {}  # trial → (attempts, holder) when frozen
    try:
        study_id = _create(server.url, grid_study(n_alpha=side, n_eps=side))
        for k in range(3):
            worker = start_worker(
                server.url, max_batch=MAX_BATCH, fake_seconds=1.0 + k * 1e-4, log=log
            )
            fake_seconds[worker.pid] = 1.0 + k * 1e-4
            workers.append(worker)
        for fraction in (0.2, 0.55):

            def busy(share: float = fraction) -> bool:
                done = _study(server.url, study_id)["trainings_done"] >= share * n
                return done and bool(_held(postgres_url, study_id))

            assert wait_until(busy, 60), log.read_text()[-5000:]
            server.process.send_signal(signal.SIGSTOP)  # requests queue up unanswered
            frozen = _held(postgres_url, study_id)
            time.sleep(LEASE_SECONDS + 1.5)  # every lease expires meanwhile
            server.process.send_signal(signal.SIGCONT)
            before = {i: a for i, (a, _) in frozen.items()}
            assert wait_until(partial(_lease_gone, server.url, study_id, before), 15)
            held.update(frozen)
        assert wait_until(lambda: _study(server.url, study_id)["state"] == "done", 90)
        assert not _leased(server.url, study_id)
        assert wait_until(lambda: {w.pid for w in workers} <= _seen_pids(server.url), 30)
        time.sleep(1.5)  # a worker still training a lost lease drops its result
        codes = stop_workers(workers)
        rows = trial_rows(postgres_url, study_id)
        assert_finished_exactly_once(rows, n, MAX_ATTEMPTS)
        assert_results_from_holders(rows, fake_seconds)
        assert_api_agrees(server.url, study_id, rows, worker_rows(postgres_url))
    finally:
        stop_workers(workers)
        server.kill()
    assert codes == [0, 0, 0], log.read_text()[-5000:]
    by_id = {r.id: r for r in rows}
    # a held trial was leased again, unless its result landed as the server froze
    releases: dict[int | None, int] = {}
    for trial_id, (attempts, holder) in held.items():
        row = by_id[trial_id]
        if row.attempts == attempts:
            assert pid_of(row.worker_id) == holder, row
        else:
            assert row.attempts > attempts, row
            releases[holder] = releases.get(holder, 0) + 1
    assert releases, "no lease expired while the server was frozen: the test proved nothing"
    dropped = _drops(log)
    for pid, count in releases.items():  # each holder dropped the trials it lost
        assert dropped.get(pid, 0) >= count, (pid, dropped)
    print(
        f"server frozen twice for {LEASE_SECONDS + 1.5:.1f} s: {len(held)} trials held, "
        f"{sum(releases.values())} leased again; {sum(dropped.values())} dropped by workers; "
        f"{sum(r.attempts for r in rows)} attempts for {n} trials"
    )
