"""The worker loop in-process against a real server: delivery, outbox, stop, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from avatune.lease_client import Backoff, ServiceClient, Unauthorized
from studies.protocol import LeaseResponse
from tests.service.fake_training import train as fake_train
from tests.service.helpers import ThreadServer, app_for, grid_study, wait_until
from workers.loop import Outcome, ProgressFn, WorkerLoop


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
