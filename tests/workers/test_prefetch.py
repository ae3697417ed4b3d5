"""The worker loop's prefetch, batched delivery and `DoesNotFit` hand-back, in-process
against a real server: the next lease is taken (and kept alive) while this one trains,
results go many per POST (one per POST on a server without the route), nothing is lost or
delivered twice, and a stop releases both leases."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

import workers.loop
from avatune.lease_client import Backoff, ServiceClient
from studies.protocol import LeaseRequest, LeaseResponse
from tests.service.fake_training import train as fake_train
from tests.service.helpers import ThreadServer, app_for, grid_study, wait_until
from workers.capabilities import WorkerCapabilities
from workers.lease_training import Outcome, ProgressFn
from workers.loop import RESULTS_PATH, WorkerLoop
from workers.sizing import DoesNotFit

LEASES = "/api/leases"
REASON = "needs 9 GiB, 2 GiB free"


@dataclass
class Call:
    """One HTTP call the worker made: path, JSON body, status, JSON answer, when it ended."""

    path: str
    body: Any
    status: int
    answer: Any
    at: float


class Recorder(httpx.HTTPTransport):
    """The worker's transport: records every call; while `down` is set the server is
    unreachable (a connection error, as when it is stopped)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.unreachable: list[str] = []
        self.down = threading.Event()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.down.is_set():
            with self._lock:
                self.unreachable.append(path)
            raise httpx.ConnectError("server down", request=request)
        body = json.loads(request.content) if request.content else None
        response = super().handle_request(request)
        response.read()
        try:
            answer = response.json()
        except ValueError:
            answer = None
        with self._lock:
            self.calls.append(Call(path, body, response.status_code, answer, time.monotonic()))
        return response

    def to(self, path: str) -> list[Call]:
        """The calls to `path` (or to paths ending with it)."""
        with self._lock:
            return [c for c in self.calls if c.path == path or c.path.endswith(path)]

    def leases(self) -> list[Call]:
        """Lease calls that got trials, in order."""
        return [c for c in self.to(LEASES) if c.status == 200 and c.answer["trials"]]


@dataclass
class Span:
    """One lease's training: its token, trials and when it started and ended."""

    token: str
    trial_ids: list[int]
    start: float
    end: float = 0.0


@dataclass
class Trainer:
    """The fake trainer taking `seconds` per lease (`first_seconds` for the first one),
    recording each training's span; `before(lease)` runs as each training starts."""

    seconds: float = 0.3
    first_seconds: float | None = None
    before: Callable[[LeaseResponse], None] | None = None
    spans: list[Span] = field(default_factory=list)

    def __call__(self, lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        span = Span(lease.token or "", [t.trial_id for t in lease.trials], time.monotonic())
        self.spans.append(span)
        if self.before is not None:
            self.before(lease)
        first = self.first_seconds if len(self.spans) == 1 else None
        time.sleep(self.seconds if first is None else first)
        outcomes = fake_train(lease, progress)
        span.end = time.monotonic()
        return outcomes

    def during_training(self, at: float) -> bool:
        """Whether some training was running at `at`."""
        return any(s.start <= at <= (s.end or time.monotonic()) for s in self.spans)


@dataclass
class OneStudy(WorkerCapabilities):
    """Capabilities of a user loop that leases one study's trials only."""

    study_id: int = 0

    def request(self, base: LeaseRequest) -> LeaseRequest:
        """The advertised request, for this study alone."""
        return super().request(base).model_copy(update={"study_id": self.study_id})


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ThreadServer]:
    """A real server on SQLite with leases long enough never to expire here."""
    with ThreadServer(app_for(sqlite_url, lease_seconds=30)) as running:
        yield running


def make_loop(url: str, trainer: Any, **options: Any) -> tuple[WorkerLoop, Recorder]:
    """A worker loop (prefetch on, as by default) whose HTTP calls are recorded."""
    recorder = Recorder()
    client = ServiceClient(url, backoff=Backoff(first=0.05, cap=0.2), transport=recorder)
    options.setdefault("max_batch", 2)
    return WorkerLoop(client, trainer, worker_id="prefetch-1", **options), recorder


def study(url: str, name: str = "g", **options: Any) -> int:
    """Create a grid study; its id."""
    response = httpx.post(f"{url}/api/studies", json=grid_study(name, **options))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def trials(url: str, sid: int) -> list[dict[str, Any]]:
    """The study's trials as the server holds them."""
    return httpx.get(f"{url}/api/studies/{sid}/trials").json()["trials"]


def leased(url: str, sid: int) -> int:
    """How many of the study's trials are leased now."""
    return sum(t["state"] == "leased" for t in trials(url, sid))


def done(url: str, sid: int) -> bool:
    """Whether the study finished."""
    return httpx.get(f"{url}/api/studies/{sid}").json()["state"] == "done"


def run_until(loop: WorkerLoop, predicate: Callable[[], bool], timeout: float = 30) -> None:
    """Run the loop on a thread until `predicate()`, then stop it and wait for it."""
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        assert wait_until(predicate, timeout)
    finally:
        loop.stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()


def delivered_items(recorder: Recorder) -> list[int]:
    """Trial ids of every result the server recorded, by either route."""
    ids = [
        item["trial_id"]
        for call in recorder.to(RESULTS_PATH)
        if call.status == 200
        for item, ack in zip(call.body["items"], call.answer["items"], strict=True)
        if ack["status"] == 200
    ]
    ids += [int(c.path.split("/")[3]) for c in recorder.to("/result") if c.status == 200]
    return ids


def test_prefetch_takes_the_next_lease_while_this_one_trains(database_url: str) -> None:
    with ThreadServer(app_for(database_url, lease_seconds=30)) as server:
        sid = study(server.url, n_alpha=2, n_eps=4)  # 8 trials: 4 leases of 2
        in_flight: list[int] = []

        def look(lease: LeaseResponse) -> None:
            if not in_flight:  # the first training: wait for the prefetched lease
                wait_until(lambda: leased(server.url, sid) == 4, 5, 0.02)
                in_flight.append(leased(server.url, sid))

        trainer = Trainer(seconds=0.3, before=look)
        loop, recorder = make_loop(server.url, trainer)
        run_until(loop, lambda: done(server.url, sid))
        assert in_flight == [4]  # two leases held while the first trained
        leases = recorder.leases()
        assert len(leases) == 4 and loop.stats.leases == 4
        spans = {s.token: s for s in trainer.spans}
        for this, following in itertools.pairwise(leases):
            assert following.at < spans[this.answer["token"]].end  # leased while it trained
        assert [s.token for s in trainer.spans] == [c.answer["token"] for c in leases]
        ids = delivered_items(recorder)
        assert sorted(ids) == sorted(t["id"] for t in trials(server.url, sid))  # each once
        assert recorder.to("/result") == []  # no result went alone
        posts = recorder.to(RESULTS_PATH)
        assert [len(c.body["items"]) for c in posts] == [2, 2, 2, 2]
        assert (loop.stats.delivered, loop.stats.dropped, loop.stats.released) == (8, 0, 0)
        assert {(t["state"], t["attempts"]) for t in trials(server.url, sid)} == {("complete", 1)}


def test_the_prefetched_lease_is_kept_alive_while_it_waits(sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url, lease_seconds=1.0)) as server:
        sid = study(server.url, n_alpha=1, n_eps=4)
        trainer = Trainer(seconds=0.05, first_seconds=2.5)  # the first trains past 2 leases
        loop, recorder = make_loop(server.url, trainer)
        run_until(loop, lambda: done(server.url, sid))
        first, second = trainer.spans[:2]
        beats = [
            c
            for c in recorder.to("/heartbeat")
            if c.body["token"] == second.token and c.at < second.start and c.status == 200
        ]
        assert len(beats) >= 2  # the waiting lease was heartbeated before its training
        assert loop.stats.dropped == 0 and sorted(delivered_items(recorder)) == sorted(
            first.trial_ids + second.trial_ids
        )
        assert {(t["state"], t["attempts"]) for t in trials(server.url, sid)} == {("complete", 1)}


def test_results_go_in_posts_of_at_most_the_delivery_batch(
    server: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers.loop, "DELIVERY_BATCH", 3)
    sid = study(server.url, n_alpha=2, n_eps=4)
    loop, recorder = make_loop(server.url, Trainer(seconds=0.01), max_batch=8, once=True)
    stats = loop.run()
    assert stats.leases == 1 and stats.delivered == 8
    assert [len(c.body["items"]) for c in recorder.to(RESULTS_PATH)] == [3, 3, 2]
    assert sorted(delivered_items(recorder)) == sorted(t["id"] for t in trials(server.url, sid))
    assert done(server.url, sid)


def test_a_413_makes_later_posts_smaller_and_loses_nothing(sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url, lease_seconds=30, max_body_bytes=8192)) as server:
        sid = study(server.url, n_alpha=1, n_eps=4)
        curve = [1.0 + k / 7 for k in range(300)]  # ~ 5.5 kB of JSON per result

        def long_curves(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
            return [Outcome(value=1.0 + t.number, curve=curve) for t in lease.trials]

        loop, recorder = make_loop(server.url, long_curves, max_batch=4, once=True)
        stats = loop.run()
        posts = recorder.to(RESULTS_PATH)
        assert [c.status for c in posts if c.status == 413] and posts[-1].status == 200
        assert [len(c.body["items"]) for c in posts if c.status == 200] == [1, 1, 1, 1]
        assert stats.delivered == 4 and stats.refused == 0 and done(server.url, sid)
        refused = [len(c.body["items"]) for c in posts if c.status == 413]
        assert refused == [4, 2]  # each 413 halves the refused batch's bytes


@pytest.mark.parametrize("alone", ["once", "study_id"])
def test_nothing_is_prefetched_with_once_or_a_one_study_request(
    server: ThreadServer, alone: str
) -> None:
    sid = study(server.url, "mine", n_alpha=1, n_eps=6)
    other = study(server.url, "other", n_alpha=1, n_eps=2)
    seen: list[int] = []

    def look(lease: LeaseResponse) -> None:
        time.sleep(0.4)  # time enough for a prefetch to land
        seen.append(leased(server.url, sid) + leased(server.url, other))

    trainer = Trainer(seconds=0.1, before=look)
    if alone == "once":
        loop, recorder = make_loop(server.url, trainer, once=True)
        loop.run()
        assert loop.stats.leases == 1 and len(recorder.to(LEASES)) == 1
        assert sum(t["state"] == "queued" for t in trials(server.url, sid)) == 4
    else:
        caps = OneStudy(study_id=sid)
        loop, recorder = make_loop(server.url, trainer, capabilities=caps)
        run_until(loop, lambda: done(server.url, sid))
        assert loop.stats.leases == 3
        assert all(c.body["study_id"] == sid for c in recorder.to(LEASES))
        assert {t["state"] for t in trials(server.url, other)} == {"queued"}
    assert seen and set(seen) == {2}  # only the lease that trains was held
    assert not any(trainer.during_training(c.at) for c in recorder.to(LEASES))


def test_a_stop_releases_the_current_and_the_prefetched_lease(server: ThreadServer) -> None:
    sid = study(server.url, n_alpha=1, n_eps=6)
    gate = threading.Event()
    trainer = Trainer(seconds=0.0, before=lambda lease: gate.wait(30))
    loop, recorder = make_loop(server.url, trainer)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: leased(server.url, sid) == 4, 10)  # training + prefetched
        loop.stop.set()  # what SIGTERM does
        thread.join(timeout=15)
    finally:
        gate.set()
    assert not thread.is_alive()
    assert (loop.stats.leases, loop.stats.released, loop.stats.delivered) == (2, 4, 0)
    releases = [c for c in recorder.to("/failure") if c.body.get("release")]
    assert len(releases) == 4 and {c.status for c in releases} == {200}
    assert {c.body["token"] for c in releases} == {c.answer["token"] for c in recorder.leases()}
    after = trials(server.url, sid)
    assert {(t["state"], t["attempts"]) for t in after} == {("queued", 0)}
    assert {t["error"] for t in after if t["error"]} <= {"worker stopped"}


def test_a_server_without_the_batch_route_gets_one_result_per_post(sqlite_url: str) -> None:
    app = app_for(sqlite_url, lease_seconds=30)

    async def older(scope: Scope, receive: Receive, send: Send) -> None:
        """The app as a server from before the batch route: that path is a route miss."""
        if scope["type"] == "http" and scope["path"] == RESULTS_PATH:
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)

    with ThreadServer(older) as server:
        sid = study(server.url, n_alpha=2, n_eps=3)
        loop, recorder = make_loop(server.url, Trainer(seconds=0.1))
        run_until(loop, lambda: done(server.url, sid))
        misses = recorder.to(RESULTS_PATH)
        assert [c.status for c in misses] == [404]  # asked once, then never again
        singles = recorder.to("/result")
        assert len(singles) == 6 and {c.status for c in singles} == {200}
        assert sorted(delivered_items(recorder)) == sorted(t["id"] for t in trials(server.url, sid))
        assert loop.stats.delivered == 6 and loop.stats.dropped == 0


def test_a_lease_that_does_not_fit_is_handed_back_and_its_study_skipped(
    server: ThreadServer,
) -> None:
    big = study(server.url, "big", n_alpha=1, n_eps=2, steps=20)  # never in one lease with
    small = study(server.url, "small", n_alpha=2, n_eps=2, steps=10)  # the other's trials

    def sized(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        if lease.trials[0].study_id == big:
            raise DoesNotFit(REASON)
        time.sleep(0.1)
        return fake_train(lease, progress)

    loop, recorder = make_loop(server.url, sized)
    run_until(loop, lambda: done(server.url, small) and bool(loop.skip_studies))
    releases = [c for c in recorder.to("/failure") if c.body.get("release")]
    assert len(releases) == 2 and {c.body["error"] for c in releases} == {REASON}
    handed_back = min(c.at for c in releases)
    later = [c for c in recorder.to(LEASES) if c.at > handed_back]
    assert later and all(c.body["skip_studies"] == [big] for c in later)
    assert all(t["study_id"] == small for c in later if c.status == 200 for t in c.answer["trials"])
    assert list(loop.skip_studies) == [big]
    after = trials(server.url, big)
    assert {(t["state"], t["attempts"], t["error"]) for t in after} == {("queued", 0, REASON)}
    assert (loop.stats.delivered, loop.stats.failed) == (4, 0)
    assert {t["state"] for t in trials(server.url, small)} == {"complete"}


def test_results_wait_in_the_outbox_while_the_server_is_unreachable(
    server: ThreadServer,
) -> None:
    """The server goes away as the first training ends: its results stay in the outbox
    while the prefetched lease trains, and go as soon as the server is back."""
    sid = study(server.url, n_alpha=1, n_eps=4)
    started: list[str] = []
    prefetched: list[bool] = []
    tried: list[bool] = []
    held: list[int] = []

    def train(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        started.append(lease.token or "")
        if len(started) == 1:
            prefetched.append(wait_until(lambda: leased(server.url, sid) == 4, 10, 0.02))
            outcomes = fake_train(lease, progress)
            recorder.down.set()  # unreachable from here on
            return outcomes
        if len(started) == 2:
            missed = lambda: recorder.unreachable.count(RESULTS_PATH) >= 3  # noqa: E731
            tried.append(wait_until(missed, 10, 0.02))
            held.append(len(loop.outbox))
            recorder.down.clear()  # back
        return fake_train(lease, progress)

    loop, recorder = make_loop(server.url, train)
    run_until(loop, lambda: done(server.url, sid))
    assert prefetched == [True] and tried == [True] and held == [2]
    assert len(started) == 2 and loop.stats.delivered == 4 and not loop.outbox
    assert sorted(delivered_items(recorder)) == sorted(t["id"] for t in trials(server.url, sid))
    assert {(t["state"], t["attempts"]) for t in trials(server.url, sid)} == {("complete", 1)}
