"""The worker loop: lease → batched training with heartbeats → results, until stopped.

Training runs on a thread while the loop, on its own thread, heartbeats the lease (one
heartbeat extends the whole lease), delivers the previous lease's results and prefetches
the next lease (`prefetch`; never with `once` nor for a user loop's one-study lease), which
it heartbeats too while it waits: the next training starts as soon as this one ends.
Results wait in an outbox until the server takes them, up to `DELIVERY_BATCH` per POST
(one per POST on a server without the batch route): an unreachable server is retried with
backoff, and nothing new is leased (nor prefetched) before the outbox is empty.
A 404 or 409 on a trial's heartbeat, result or failure (its study was deleted, its lease
expired or was released: `Dropped`) drops that trial alone, with one log line: the loop
goes on training, heartbeating and reporting the lease's other trials, and keeps running.
A result the server finds invalid is reported as the trial's failure instead. A lease the
device cannot hold (`DoesNotFit`) is handed back with the reason, no attempt used, and its
studies are left out of this worker's later lease requests (`skip_studies`). On SIGTERM
or SIGINT the loop releases its current and its prefetched lease (the trials go back to
the queue without using an attempt), tries once more to deliver finished results, and
returns; the caller then exits even if the training thread is still running.

Events go to the `avatune.worker` logger, one line per lease among them (trials, task,
seconds, complete / diverged / failed / dropped, best value); `workers.display` shows the
progress bars on a terminal. The stop event is the client's (`ServiceClient(stop=...)`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from avatune.lease_client import Dropped, NoBatchRoute, Rejected, ServiceClient, Stopped
from studies.protocol import (
    MAX_SKIP_STUDIES,
    Heartbeat,
    LeasedTrial,
    LeaseRequest,
    LeaseResponse,
    TrialFailure,
    TrialResult,
)
from workers.display import LeaseDisplay, Quiet
from workers.lease_training import Outcome, Trainer, wire_result
from workers.sizing import DoesNotFit

if TYPE_CHECKING:
    from workers.capabilities import WorkerCapabilities

log = logging.getLogger("avatune.worker")
#: How often the loop looks at the training thread and the stop flag, seconds.
POLL_SECONDS = 0.2
#: Results one POST delivers at most, and their JSON bytes (the server's default body
#: limit is 1 MiB; a 413 halves the refused batch's bytes for later POSTs).
DELIVERY_BATCH = 512
DELIVERY_BYTES = 512 * 1024
RESULTS_PATH = "/api/trials/results"


def default_worker_id() -> str:
    """hostname-pid-random: unique per worker process."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host[:60] or 'worker'}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class LeaseTally:
    """What one lease's trials came to (released: handed back when the worker stopped)."""

    complete: int = 0
    diverged: int = 0
    failed: int = 0
    released: int = 0
    dropped: int = 0
    best: float | None = None

    def count(self, outcome: Outcome) -> None:
        """Count a trained trial's outcome and keep the lowest value."""
        if outcome.diverged:
            self.diverged += 1
        else:
            self.complete += 1
        if math.isfinite(outcome.value) and (self.best is None or outcome.value < self.best):
            self.best = outcome.value


def log_lease(lease: LeaseResponse, tally: LeaseTally, seconds: float) -> None:
    """The lease's line: token prefix, trials, task, seconds, counts and best value."""
    task = lease.task.name if lease.task else "?"
    optimizers = sorted({t.optimizer.name for t in lease.trials})
    prefix = (lease.token or "")[:8]
    counts = f"{tally.complete} complete, {tally.diverged} diverged, {tally.failed} failed"
    if tally.released:
        counts += f", {tally.released} released"
    if tally.dropped:
        counts += f", {tally.dropped} dropped"
    best = "–" if tally.best is None else f"{tally.best:.4g}"
    log.info(
        "lease %s: %d trials · %s · %s in %.1f s: %s; best %s",
        prefix,
        len(lease.trials),
        task,
        ", ".join(optimizers),
        seconds,
        counts,
        best,
        extra={
            "lease": prefix,
            "trials": len(lease.trials),
            "task": task,
            "optimizers": optimizers,
            "seconds": round(seconds, 3),
            "complete": tally.complete,
            "diverged": tally.diverged,
            "failed": tally.failed,
            "released": tally.released,
            "dropped": tally.dropped,
            "best": tally.best,
        },
    )


@dataclass
class HeldLease:
    """A lease this worker holds: the request it answered, its trials the server gave up,
    its training's progress (steps done, total) and when it is due a heartbeat."""

    lease: LeaseResponse
    request: LeaseRequest
    next_beat: float
    dropped: set[int] = field(default_factory=set)
    steps: list[int] = field(default_factory=lambda: [0, 0])

    def live(self) -> list[LeasedTrial]:
        """The lease's trials not dropped."""
        return [t for t in self.lease.trials if t.trial_id not in self.dropped]


@dataclass
class WorkerStats:
    """What a worker did (refused: invalid results; dropped: trials the server gave up)."""

    leases: int = 0
    delivered: int = 0
    refused: int = 0
    dropped: int = 0
    released: int = 0
    failed: int = 0


class WorkerLoop:
    """Lease, train, report — until stopped (`client.stop`), or once with `once`."""

    def __init__(
        self,
        client: ServiceClient,
        trainer: Trainer,
        *,
        worker_id: str | None = None,
        max_batch: int = 64,
        once: bool = False,
        device: str | None = None,
        display: LeaseDisplay | None = None,
        capabilities: WorkerCapabilities | None = None,
        prefetch: bool = True,
    ) -> None:
        self.client = client
        #: What this worker advertises; None: no lists (a custom trainer runs anything).
        self.capabilities = capabilities
        self.trainer = trainer
        self.worker_id = worker_id or default_worker_id()
        self.max_batch = max_batch
        self.once = once
        #: Lease the next trials while the current ones train (never with `once`).
        self.prefetch = prefetch
        self.device = device
        self.display: LeaseDisplay = display or Quiet()
        self.outbox: list[tuple[int, TrialResult]] = []
        self.stats = WorkerStats()
        self.training: threading.Thread | None = None
        #: The signal that stopped the loop, if one did (the process exits 130 on SIGINT).
        self.signal: int | None = None
        #: Studies whose task did not fit this device (in order), left out of lease requests.
        self.skip_studies: dict[int, None] = {}
        #: The lease taken while the current one trains.
        self._next: HeldLease | None = None
        self._base = LeaseRequest(worker_id=self.worker_id)
        #: Whether the server has the batch result route (False: one result per POST).
        self._batched = True
        self._batch_bytes = DELIVERY_BYTES
        #: When, during a training, to try the server again after it was unreachable.
        self._retry_at = 0.0
        self._delays: Callable[[], float] | None = None
        #: When to ask again after a prefetch found nothing to lease.
        self._prefetch_at = 0.0

    @property
    def stop(self) -> threading.Event:
        """The client's stop event: set it to stop the loop (what SIGTERM does)."""
        return self.client.stop

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop (call from the main thread)."""

        def handle(signum: int, _frame: Any) -> None:
            self.signal = signum
            log.info("signal %d: releasing the current lease and stopping", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self) -> WorkerStats:
        """The loop; returns when stopped, or after one lease with `once`."""
        self._base = LeaseRequest(
            worker_id=self.worker_id,
            max_trials=self.max_batch,
            host=socket.gethostname()[:200],
            device=self.device,
        )
        try:
            while not self.stop.is_set():
                held, self._next = self._next, None
                if held is None:
                    self._deliver(retry=True)
                    lease, request, new = self._ask(retry=not self.once)  # --once: fail fast
                    if not lease.trials:
                        if new:
                            continue  # ask again at once
                        if self.once:
                            log.info("no trial to run")
                            break
                        self.stop.wait(lease.retry_after)
                        continue
                    held = self._hold(lease, request)
                self._run_lease(held)
                if self._next is None:  # else delivered while the next lease trains
                    self._deliver(retry=not self.stop.is_set())
                if self.once:
                    break
        except Stopped:
            pass
        if self._next is not None:
            waiting, self._next = self._next, None
            released = self._release(waiting, "worker stopped", retry=False)
            prefix = (waiting.lease.token or "")[:8]
            log.info("prefetched lease %s: %d trials released", prefix, released)
        if self.outbox:
            self._deliver(retry=False)
        return self.stats

    def _ask(self, *, retry: bool) -> tuple[LeaseResponse, LeaseRequest, bool]:
        """Lease with this worker's request, then probe what the answer names that this
        worker has not tried (True: it probed something: ask again at once)."""
        caps = self.capabilities
        request = self._base if caps is None else caps.request(self._base)
        if self.skip_studies:
            request = request.model_copy(update={"skip_studies": list(self.skip_studies)})
        lease = self.client.lease(request, retry=retry)
        new = caps is not None and not all(caps.knows(p) for p in lease.probe)
        if caps is not None and new:
            caps.probe(lease.probe)  # the next request advertises what imports
        return lease, request, new

    def _hold(self, lease: LeaseResponse, request: LeaseRequest) -> HeldLease:
        """A lease just taken, due its first heartbeat a heartbeat interval from now."""
        self.stats.leases += 1
        return HeldLease(lease, request, time.monotonic() + lease.heartbeat_seconds)

    def _run_lease(self, held: HeldLease) -> None:
        """Train one lease and log its line (what it produced, how long it took)."""
        started = time.monotonic()
        tally = self._train_lease(held)
        tally.dropped = len(held.dropped)
        log_lease(held.lease, tally, time.monotonic() - started)

    def _train_lease(self, held: HeldLease) -> LeaseTally:
        """Train the lease on a thread, meanwhile heartbeating it, delivering and
        prefetching (`_meanwhile`); fill the outbox."""
        lease = held.lease
        assert lease.token is not None
        self.display.lease(lease)
        tally = LeaseTally()
        box: dict[str, Any] = {}

        def progress(done: int, total: int) -> None:
            held.steps[0], held.steps[1] = done, total
            self.display.update(done, total)

        def work() -> None:
            try:
                box["outcomes"] = self.trainer(lease, progress)
            except Exception as error:
                box["error"] = error
                box["trace"] = traceback.format_exc()

        self.training = threading.Thread(target=work, name="avatune-train", daemon=True)
        self.training.start()
        while True:
            self.training.join(timeout=self._idle(held))
            if not self.training.is_alive():
                break
            if self.stop.is_set():
                tally.released = self._release(held, "worker stopped", retry=False)
                return tally
            self._meanwhile(held)
        if isinstance(box.get("error"), DoesNotFit):
            tally.released = self._does_not_fit(held, box["error"])
            return tally
        if "error" in box:
            error = f"{type(box['error']).__name__}: {box['error']}\n{box['trace']}"
            tally.failed = self._fail(held, error)
            return tally
        outcomes: list[Outcome] = box["outcomes"]
        if len(outcomes) != len(lease.trials):
            error = f"trainer returned {len(outcomes)} outcomes for {len(lease.trials)} trials"
            tally.failed = self._fail(held, error)
            return tally
        for trial, outcome in zip(lease.trials, outcomes, strict=True):
            if trial.trial_id in held.dropped:
                continue  # the server gave it up: its result would be refused
            try:
                self.outbox.append((trial.trial_id, wire_result(lease.token, outcome)))
            except ValidationError as error:
                invalid = f"the trainer's result is invalid: {error}"
                tally.failed += self._fail(held, invalid, [trial])
            else:
                tally.count(outcome)
        self.display.update(held.steps[1], held.steps[1])
        self.display.status("reporting")
        return tally

    def _prefetching(self, held: HeldLease) -> bool:
        """Whether to lease the next trials while `held` trains: not with `once`, not for a
        one-study lease (a user loop), not before the outbox is delivered."""
        alone = self.once or held.request.study_id is not None
        return self.prefetch and not alone and self._next is None and not self.outbox

    def _idle(self, held: HeldLease) -> float:
        """Seconds to wait for the training before the next thing due (`POLL_SECONDS` at most)."""
        due = [h.next_beat for h in (held, self._next) if h is not None]
        if self.outbox:
            due.append(self._retry_at)
        elif self._prefetching(held):
            due.append(max(self._retry_at, self._prefetch_at))
        return max(0.0, min(POLL_SECONDS, min(due) - time.monotonic()))

    def _meanwhile(self, held: HeldLease) -> None:
        """While `held` trains: the heartbeats due (its own, the prefetched lease's), then one
        POST of finished results, or else (the outbox empty) the prefetch."""
        for lease in (held, self._next):
            if lease is not None and time.monotonic() >= lease.next_beat:
                lease.next_beat = time.monotonic() + lease.lease.heartbeat_seconds
                self._heartbeat(lease)
        if time.monotonic() < self._retry_at:
            return  # the server was unreachable a moment ago
        if self.outbox:
            self._deliver(retry=False, posts=1)
        elif self._prefetching(held) and time.monotonic() >= self._prefetch_at:
            self._prefetch()

    def _prefetch(self) -> None:
        """Lease the next trials now (not retried: the training goes on meanwhile)."""
        try:
            lease, request, new = self._ask(retry=False)
        except ConnectionError as error:
            log.warning("prefetching the next lease failed (%s); still training", error)
            self._unreachable()
            return
        self._delays = None
        if lease.trials:
            self._next = self._hold(lease, request)
            log.debug("prefetched lease %s: %d trials", (lease.token or "")[:8], len(lease.trials))
        elif not new:
            self._prefetch_at = time.monotonic() + lease.retry_after

    def _unreachable(self) -> None:
        """Wait longer (backoff) before the next try at delivery or prefetch."""
        if self._delays is None:
            self._delays = self.client.backoff.delays()
        self._retry_at = time.monotonic() + self._delays()

    def _skip(self, study_ids: Sequence[int]) -> None:
        """Leave these studies out of later lease requests (the latest `MAX_SKIP_STUDIES`)."""
        for study_id in study_ids:
            self.skip_studies.pop(study_id, None)
            self.skip_studies[study_id] = None
        while len(self.skip_studies) > MAX_SKIP_STUDIES:
            del self.skip_studies[next(iter(self.skip_studies))]

    def _does_not_fit(self, held: HeldLease, error: DoesNotFit) -> int:
        """Hand a lease the device cannot hold back with the reason (no attempt used) and
        ask for none of its studies' trials again; how many trials it held."""
        study_ids = sorted({t.study_id for t in held.lease.trials})
        self._skip(study_ids)
        log.warning(
            "lease %s does not fit this device: %s; handing it back, and skipping study %s",
            (held.lease.token or "")[:8],
            error.reason,
            ", ".join(map(str, study_ids)),
            extra={"studies": study_ids, "reason": error.reason},
        )
        return self._release(held, error.reason, retry=not self.stop.is_set())

    def _drop(
        self, trial_id: int, error: Dropped, call: str, held: HeldLease | None = None
    ) -> None:
        """Give up a trial the server no longer holds for this worker (one log line)."""
        if held is not None:
            if trial_id in held.dropped:
                return
            held.dropped.add(trial_id)
        self.stats.dropped += 1
        log.warning(
            "trial %d dropped: the server refused its %s (%s); going on with the rest",
            trial_id,
            call,
            error,
            extra={"trial": trial_id, "call": call, "status": error.status_code},
        )

    def _heartbeat(self, held: HeldLease) -> None:
        """Extend the lease through its first live trial, dropping those the server gave up."""
        assert held.lease.token is not None
        beat = Heartbeat(token=held.lease.token, done=held.steps[0], total=held.steps[1])
        for trial in held.live():
            try:
                self.client.heartbeat(trial.trial_id, beat)
            except ConnectionError as error:
                log.warning("heartbeat failed (%s); still training", error)
            except Dropped as error:
                self._drop(trial.trial_id, error, "heartbeat", held)
                continue  # the next live trial's heartbeat extends the rest of the lease
            except Rejected as error:
                log.warning("heartbeat refused (%s); still training", error)
            return

    def _release(self, held: HeldLease, reason: str, *, retry: bool) -> int:
        """Hand the live trials back with `reason` (no attempt used); how many were live."""
        assert held.lease.token is not None
        released = 0
        for trial in held.live():
            body = TrialFailure(token=held.lease.token, error=reason[-10_000:], release=True)
            try:
                self.client.failure(trial.trial_id, body, retry=retry)
            except (ConnectionError, Stopped):
                break  # the lease expires on the server instead
            except Dropped as error:
                self._drop(trial.trial_id, error, "release", held)
            except Rejected as error:
                log.warning("release of trial %d refused: %s", trial.trial_id, error)
            else:
                released += 1
        self.stats.released += released
        return len(held.live())  # those not taken back expire on the server

    def _fail(
        self, held: HeldLease, error: str, trials: Sequence[LeasedTrial] | None = None
    ) -> int:
        """Report the live ones of `trials` (default: the lease's) failed; how many there were."""
        assert held.lease.token is not None
        log.warning("training failed: %s", error.splitlines()[0][:300])
        chosen = held.lease.trials if trials is None else trials
        live = [t for t in chosen if t.trial_id not in held.dropped]
        for trial in live:
            body = TrialFailure(token=held.lease.token, error=error[-10_000:])
            try:
                self.client.failure(trial.trial_id, body, retry=not self.stop.is_set())
            except (ConnectionError, Stopped):
                break
            except Dropped as dropped:
                self._drop(trial.trial_id, dropped, "failure", held)
            except Rejected as refused:
                log.warning("failure of trial %d refused: %s", trial.trial_id, refused)
            else:
                self.stats.failed += 1
        return len(live)

    def _deliver(self, *, retry: bool, posts: int | None = None) -> None:
        """Send finished results, `posts` POSTs at most (None: every result), retrying while
        the server is unreachable when `retry` (else leaving them for a later try)."""
        sent = 0
        while self.outbox and (posts is None or sent < posts):
            sent += 1
            try:
                if self._batched:
                    self._deliver_batch(retry=retry)
                else:
                    self._deliver_one(retry=retry)
            except ConnectionError:
                self._unreachable()
                return
            self._delays = None
        stats = self.stats
        self.display.status(
            f"delivered {stats.delivered}, refused {stats.refused}, dropped {stats.dropped}"
        )

    @staticmethod
    def _bytes(result: TrialResult) -> int:
        """About how many bytes of a batch's JSON one result takes."""
        return len(result.model_dump_json(exclude_defaults=True)) + 32

    def _batch(self) -> list[tuple[int, TrialResult]]:
        """The outbox's first results that one POST carries (at least one)."""
        size, count = 0, 0
        for _, result in self.outbox[:DELIVERY_BATCH]:
            size += self._bytes(result)
            if count and size > self._batch_bytes:
                break
            count += 1
        return self.outbox[:count]

    def _deliver_batch(self, *, retry: bool) -> None:
        """Deliver the next batch in one POST and settle each result by its answer."""
        batch = self._batch()
        try:
            acks = self.client.results(batch, retry=retry)
        except NoBatchRoute:
            log.info("the server has no batch result route: delivering one result per POST")
            self._batched = False
            return
        except Rejected as error:
            if error.status_code == 413 and len(batch) > 1:
                # half the refused batch's bytes from now on: each 413 leaves fewer per POST
                self._batch_bytes = sum(self._bytes(r) for _, r in batch) // 2
                return
            log.warning("batch of %d results refused (%s): one per POST", len(batch), error)
            for _ in batch:
                self._deliver_one(retry=retry)
            return
        for (trial_id, result), ack in zip(batch, acks, strict=True):
            if ack.status < 300:
                self.stats.delivered += 1
            elif ack.status in (404, 409):
                self._drop(trial_id, Dropped(ack.status, ack.detail, RESULTS_PATH), "result")
            else:
                self._refused(trial_id, result, Rejected(ack.status, ack.detail, RESULTS_PATH))
        del self.outbox[: len(batch)]

    def _deliver_one(self, *, retry: bool) -> None:
        """Deliver the outbox's first result on its own POST."""
        trial_id, result = self.outbox[0]
        try:
            self.client.result(trial_id, result, retry=retry)
        except Dropped as error:
            self._drop(trial_id, error, "result")
        except Rejected as error:
            self._refused(trial_id, result, error)
        else:
            self.stats.delivered += 1
        self.outbox.pop(0)

    def _refused(self, trial_id: int, result: TrialResult, error: Rejected) -> None:
        """The server found the result invalid: report the trial failed, saying why."""
        log.warning("result of trial %d refused: %s", trial_id, error)
        failure = TrialFailure(token=result.token, error=f"result refused: {error}"[:10_000])
        with contextlib.suppress(ConnectionError, Rejected, Dropped):
            self.client.failure(trial_id, failure, retry=False)
        self.stats.refused += 1
