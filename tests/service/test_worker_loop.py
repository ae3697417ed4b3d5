"""The worker loop in-process against a real server: delivery, outbox, stop, failures, and
trials dropped on a 404/409 (a study deleted, a trial released) while the rest go on."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import workers.run
from avatune.lease_client import Backoff, ServiceClient, Unauthorized
from studies.protocol import LeaseResponse
from tests.service.fake_training import train as fake_train
from tests.service.helpers import ThreadServer, app_for, grid_study, wait_until
from workers.lease_training import Outcome, ProgressFn
from workers.loop import WorkerLoop
from workers.run import run_worker

#: What `spoiling_train` does to the lease's first trial, and the server it does it on.
SPOIL, SPOIL_SERVER = "AVATUNE_TEST_SPOIL", "AVATUNE_TEST_SPOIL_SERVER"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ThreadServer]:
    with ThreadServer(app_for(sqlite_url, lease_seconds=30)) as running:
        yield running


def make_loop(url: str, trainer: Any = fake_train, **options: Any) -> WorkerLoop:
    client = ServiceClient(url, backoff=Backoff(first=0.05, cap=0.2))
    return WorkerLoop(client, trainer, worker_id="loop-1", **options)


def study(url: str, **options: Any) -> int:
    response = httpx.post(f"{url}/api/studies", json=grid_study(**options))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def get(url: str, path: str) -> Any:
    return httpx.get(f"{url}{path}").json()


def test_once_runs_one_lease(server: ThreadServer) -> None:
    sid = study(server.url, n_alpha=2, n_eps=3)
    stats = make_loop(server.url, max_batch=4, once=True).run()
    assert stats.leases == 1 and stats.delivered == 4
    assert get(server.url, f"/api/studies/{sid}")["counts"] == {"complete": 4, "queued": 2}
    trial = get(server.url, f"/api/studies/{sid}/trials?state=complete&curves=true")["trials"][0]
    assert trial["curve"] == [2.0, 1.5, 1.0] and trial["test_value"] == trial["value"] + 0.5


def test_runs_until_stopped(server: ThreadServer) -> None:
    sid = study(server.url, n_alpha=3, n_eps=3)
    loop = make_loop(server.url, max_batch=2)
    thread = threading.Thread(target=loop.run)
    thread.start()
    assert wait_until(lambda: get(server.url, f"/api/studies/{sid}")["state"] == "done", 30)
    loop.stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and loop.stats.delivered == 9


def test_results_wait_in_the_outbox_while_the_server_is_down(sqlite_url: str) -> None:
    app = app_for(sqlite_url, lease_seconds=60)
    first = ThreadServer(app).start()
    sid = study(first.url, n_alpha=1, n_eps=2)
    gate = threading.Event()

    def slow(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        gate.wait(20)
        return fake_train(lease, progress)

    loop = make_loop(first.url, slow, max_batch=2, once=True)
    thread = threading.Thread(target=loop.run)
    thread.start()
    assert wait_until(lambda: get(first.url, f"/api/studies/{sid}")["counts"] == {"leased": 2}, 10)
    first.stop()
    gate.set()  # training ends while the server is down: delivery retries with backoff
    time.sleep(0.5)
    assert thread.is_alive() and len(loop.outbox) == 2
    second = ThreadServer(app_for(sqlite_url, lease_seconds=60), port=first.port).start()
    try:
        thread.join(timeout=20)
        assert not thread.is_alive() and loop.stats.delivered == 2
        assert get(second.url, f"/api/studies/{sid}")["state"] == "done"
    finally:
        second.stop()


def test_stop_releases_the_lease(server: ThreadServer) -> None:
    sid = study(server.url, n_alpha=1, n_eps=3)
    started = threading.Event()

    def forever(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        started.set()
        time.sleep(30)
        return []

    loop = make_loop(server.url, forever, max_batch=3)
    thread = threading.Thread(target=loop.run)
    thread.start()
    assert started.wait(10)
    loop.stop.set()  # what SIGTERM does
    thread.join(timeout=10)
    assert not thread.is_alive() and loop.stats.released == 3
    trials = get(server.url, f"/api/studies/{sid}/trials")["trials"]
    assert {(t["state"], t["attempts"]) for t in trials} == {("queued", 0)}


def test_training_errors_are_reported_as_failures(server: ThreadServer) -> None:
    sid = study(server.url, n_alpha=1, n_eps=2)

    def broken(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        raise RuntimeError("CUDA error: out of memory")

    make_loop(server.url, broken, max_batch=2, once=True).run()
    trials = get(server.url, f"/api/studies/{sid}/trials")["trials"]
    assert {t["state"] for t in trials} == {"queued"}
    assert all("out of memory" in t["error"] for t in trials)


def test_heartbeats_keep_long_training_alive(sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url, lease_seconds=0.6)) as server:
        sid = study(server.url, n_alpha=1, n_eps=2)

        def slow(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
            for step in range(8):
                time.sleep(0.25)
                progress(step + 1, 8)
            return fake_train(lease, progress)

        stats = make_loop(server.url, slow, max_batch=2, once=True).run()
        assert stats.delivered == 2 and stats.refused == 0
        assert get(server.url, f"/api/studies/{sid}")["state"] == "done"


def test_an_invalid_result_becomes_a_failure(server: ThreadServer) -> None:
    sid = study(server.url, n_alpha=1, n_eps=2)

    def nan(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        return [Outcome(value=float("nan")), Outcome(value=2.0, curve=[1.0, float("inf")])]

    stats = make_loop(server.url, nan, max_batch=2, once=True).run()
    assert stats.delivered == 1 and stats.failed == 1
    trials = {
        t["state"]: t for t in get(server.url, f"/api/studies/{sid}/trials?curves=true")["trials"]
    }
    assert "invalid" in trials["queued"]["error"] and trials["complete"]["curve"] == [1.0]


def test_a_wrong_token_stops_the_worker(sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url, token="right-token")) as server:
        client = ServiceClient(server.url, "wrong-token")
        with pytest.raises(Unauthorized):
            WorkerLoop(client, fake_train, once=True).run()
        client.close()


def spoil_first_trial(url: str, lease: LeaseResponse, how: str) -> None:
    """Make the server give up the lease's first trial: delete its study (404 from then on)
    or release it under the lease's token (409)."""
    first = lease.trials[0]
    if how == "delete":
        response = httpx.delete(f"{url}/api/studies/{first.study_id}")
        assert response.status_code == 204, response.text
    else:
        body = {"token": lease.token, "error": "taken back", "release": True}
        response = httpx.post(f"{url}/api/trials/{first.trial_id}/failure", json=body)
        assert response.status_code == 200, response.text


def spoiling_train(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
    """The fake trainer, spoiling the first trial (`SPOIL`) and training past a few beats."""
    spoil_first_trial(os.environ[SPOIL_SERVER], lease, os.environ[SPOIL])
    for step in range(6):
        time.sleep(0.25)  # past the lease (1.2 s): only heartbeats (every 0.4 s) keep it
        progress(step + 1, 6)
    return fake_train(lease, progress)


@pytest.mark.parametrize(("how", "status"), [("delete", 404), ("release", 409)])
def test_a_refused_heartbeat_drops_one_trial_and_the_worker_goes_on(
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
    status: int,
) -> None:
    with ThreadServer(app_for(sqlite_url, lease_seconds=1.2)) as server:
        first, second = (study(server.url, name=n, n_alpha=1, n_eps=1) for n in ("a", "b"))
        monkeypatch.setenv(SPOIL, how)
        monkeypatch.setenv(SPOIL_SERVER, server.url)
        handlers = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
        try:
            with caplog.at_level(logging.INFO, "avatune.worker"):
                stats = run_worker(  # SystemExit on any exit code but 0
                    server.url,
                    None,
                    device=None,
                    max_batch=2,
                    once=True,
                    train_function=f"{__name__}:spoiling_train",
                )
        finally:
            signal.signal(signal.SIGTERM, handlers[0])
            signal.signal(signal.SIGINT, handlers[1])
        assert (stats.leases, stats.delivered, stats.dropped, stats.refused) == (1, 1, 1, 0)
        drops = [r for r in caplog.records if "dropped" in r.getMessage().split(":")[0]]
        assert len(drops) == 1 and f"{status}: " in drops[0].getMessage()
        assert "heartbeat" in drops[0].getMessage()
        (lease_line,) = [r for r in caplog.records if r.getMessage().startswith("lease ")]
        assert "1 complete, 0 diverged, 0 failed, 1 dropped" in lease_line.getMessage()
        states = [httpx.get(f"{server.url}/api/studies/{s}").json() for s in (first, second)]
        gone = [s for s in states if s.get("detail")]
        kept = [s for s in states if not s.get("detail")]
        if how == "delete":  # one study gone, the other one finished
            assert len(gone) == 1 and [s["counts"] for s in kept] == [{"complete": 1}]
        else:  # the released trial is queued again, with no attempt used
            assert sorted(str(s["counts"]) for s in kept) == sorted(
                [str({"complete": 1}), str({"queued": 1})]
            )


@pytest.mark.parametrize("how", ["delete", "release"])
def test_a_refused_result_is_dropped_and_the_loop_goes_on(server: ThreadServer, how: str) -> None:
    sids = [study(server.url, name=n, n_alpha=1, n_eps=1) for n in "abcd"]
    spoiled: list[int] = []

    def spoil_once(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        outcomes = fake_train(lease, progress)
        if not spoiled:  # after training, before delivery: the result meets a 404 or 409
            spoil_first_trial(server.url, lease, how)
            spoiled.append(lease.trials[0].study_id)
        return outcomes

    loop = make_loop(server.url, spoil_once, max_batch=2)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:

        def finished() -> bool:
            states = [get(server.url, f"/api/studies/{s}").get("state") for s in sids]
            return bool(spoiled) and all(s in ("done", None) for s in states)

        assert wait_until(finished, 30)
    finally:
        loop.stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    kept = [s for s in sids if how == "release" or s != spoiled[0]]
    assert loop.stats.dropped == 1 and loop.stats.refused == 0
    assert loop.stats.delivered == len(kept) and loop.stats.leases >= 2
    for sid in kept:  # the released trial was leased again and trained, once
        assert get(server.url, f"/api/studies/{sid}")["counts"] == {"complete": 1}


def test_the_client_holds_the_stop_event_it_was_given(
    server: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    client = ServiceClient(server.url, stop=stop)
    loop = WorkerLoop(client, fake_train, once=True)
    assert client.stop is stop and loop.stop is stop
    with pytest.raises(AttributeError):
        client.stop = threading.Event()  # type: ignore[misc]
    client.close()
    made: list[ServiceClient] = []

    class Recorded(ServiceClient):
        def __init__(self, *args: Any, **options: Any) -> None:
            assert isinstance(options.get("stop"), threading.Event)
            super().__init__(*args, **options)
            made.append(self)

    monkeypatch.setattr(workers.run, "ServiceClient", Recorded)
    handlers = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
    try:
        stats = run_worker(
            server.url,
            None,
            device=None,
            max_batch=2,
            once=True,
            train_function="tests.service.fake_training:train",
        )
        (client,) = made
        assert stats.leases == 0 and not client.stop.is_set()
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
        assert client.stop.is_set()  # the handler sets the client's own event
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
