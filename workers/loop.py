"""The worker loop: lease → batched training with heartbeats → results, until stopped.

Training runs on a thread while the loop heartbeats the lease (one heartbeat extends the
whole lease). Results wait in an outbox until the server takes them: an unreachable
server is retried with backoff, and nothing new is leased before the outbox is empty.
A 404 or 409 on a trial's heartbeat, result or failure (its study was deleted, its lease
expired or was released: `Dropped`) drops that trial alone, with one log line: the loop
goes on training, heartbeating and reporting the lease's other trials, and keeps running.
A result the server finds invalid is reported as the trial's failure instead. On SIGTERM
or SIGINT the loop releases its current lease (the trials go back to the queue without
using an attempt), tries once more to deliver finished results, and returns; the caller
then exits even if the training thread is still running.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from avatune.lease_client import Dropped, Rejected, ServiceClient, Stopped
from studies.protocol import (
    Heartbeat,
    LeasedTrial,
    LeaseRequest,
    LeaseResponse,
    TrialFailure,
    TrialResult,
)
from workers.display import LeaseDisplay, Quiet
from workers.lease_training import Outcome, Trainer, wire_result

if TYPE_CHECKING:
    from workers.capabilities import WorkerCapabilities

log = logging.getLogger("avatune.worker")
#: How often the loop looks at the training thread and the stop flag, seconds.
POLL_SECONDS = 0.2


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
    ) -> None:
        self.client = client
        #: What this worker advertises; None: no lists (a custom trainer runs anything).
        self.capabilities = capabilities
        self.trainer = trainer
        self.worker_id = worker_id or default_worker_id()
        self.max_batch = max_batch
        self.once = once
        self.device = device
        self.display: LeaseDisplay = display or Quiet()
        self.outbox: list[tuple[int, TrialResult]] = []
        self.stats = WorkerStats()
        self.training: threading.Thread | None = None
        #: The signal that stopped the loop, if one did (the process exits 130 on SIGINT).
        self.signal: int | None = None
        #: Trials of the current lease that the server no longer holds for this worker.
        self._dropped: set[int] = set()

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
        base = LeaseRequest(
            worker_id=self.worker_id,
            max_trials=self.max_batch,
            host=socket.gethostname()[:200],
            device=self.device,
        )
        try:
            while not self.stop.is_set():
                self._deliver(retry=True)
                caps = self.capabilities
                request = base if caps is None else caps.request(base)
                lease = self.client.lease(request, retry=not self.once)  # --once: fail fast
                new = caps is not None and not all(caps.knows(p) for p in lease.probe)
                if caps is not None and new:
                    caps.probe(lease.probe)  # the next request advertises what imports
                if not lease.trials:
                    if new:
                        continue  # ask again at once
                    if self.once:
                        log.info("no trial to run")
                        break
                    self.stop.wait(lease.retry_after)
                    continue
                self.stats.leases += 1
                self._run_lease(lease)
                self._deliver(retry=not self.stop.is_set())
                if self.once:
                    break
        except Stopped:
            pass
        if self.outbox:
            self._deliver(retry=False)
        return self.stats

    def _run_lease(self, lease: LeaseResponse) -> None:
        """Train one lease and log its line (what it produced, how long it took)."""
        started = time.monotonic()
        self._dropped = set()
        tally = self._train_lease(lease)
        tally.dropped = len(self._dropped)
        log_lease(lease, tally, time.monotonic() - started)

    def _live(self, lease: LeaseResponse) -> list[LeasedTrial]:
        """The lease's trials not dropped."""
        return [t for t in lease.trials if t.trial_id not in self._dropped]

    def _train_lease(self, lease: LeaseResponse) -> LeaseTally:
        """Train the lease on a thread, heartbeating it meanwhile; fill the outbox."""
        assert lease.token is not None
        self.display.lease(lease)
        tally = LeaseTally()
        box: dict[str, Any] = {}
        steps = [0, 0]

        def progress(done: int, total: int) -> None:
            steps[0], steps[1] = done, total
            self.display.update(done, total)

        def work() -> None:
            try:
                box["outcomes"] = self.trainer(lease, progress)
            except Exception as error:
                box["error"] = error
                box["trace"] = traceback.format_exc()

        self.training = threading.Thread(target=work, name="avatune-train", daemon=True)
        self.training.start()
        next_beat = time.monotonic() + lease.heartbeat_seconds
        while True:
            self.training.join(timeout=max(0.0, min(POLL_SECONDS, next_beat - time.monotonic())))
            if not self.training.is_alive():
                break
            if self.stop.is_set():
                tally.released = self._release(lease)
                return tally
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + lease.heartbeat_seconds
                self._heartbeat(lease, steps)
        if "error" in box:
            error = f"{type(box['error']).__name__}: {box['error']}\n{box['trace']}"
            tally.failed = self._fail(lease, error)
            return tally
        outcomes: list[Outcome] = box["outcomes"]
        if len(outcomes) != len(lease.trials):
            error = f"trainer returned {len(outcomes)} outcomes for {len(lease.trials)} trials"
            tally.failed = self._fail(lease, error)
            return tally
        for trial, outcome in zip(lease.trials, outcomes, strict=True):
            if trial.trial_id in self._dropped:
                continue  # the server gave it up: its result would be refused
            try:
                self.outbox.append((trial.trial_id, wire_result(lease.token, outcome)))
            except ValidationError as error:
                invalid = f"the trainer's result is invalid: {error}"
                tally.failed += self._fail(lease, invalid, [trial])
            else:
                tally.count(outcome)
        self.display.update(steps[1], steps[1])
        self.display.status("reporting")
        return tally

    def _drop(self, trial_id: int, error: Dropped, call: str) -> None:
        """Give up a trial the server no longer holds for this worker (one log line)."""
        if trial_id in self._dropped:
            return
        self._dropped.add(trial_id)
        self.stats.dropped += 1
        log.warning(
            "trial %d dropped: the server refused its %s (%s); going on with the rest",
            trial_id,
            call,
            error,
            extra={"trial": trial_id, "call": call, "status": error.status_code},
        )

    def _heartbeat(self, lease: LeaseResponse, steps: list[int]) -> None:
        """Extend the lease through its first live trial, dropping those the server gave up."""
        assert lease.token is not None
        beat = Heartbeat(token=lease.token, done=steps[0], total=steps[1])
        for trial in self._live(lease):
            try:
                self.client.heartbeat(trial.trial_id, beat)
            except ConnectionError as error:
                log.warning("heartbeat failed (%s); still training", error)
            except Dropped as error:
                self._drop(trial.trial_id, error, "heartbeat")
                continue  # the next live trial's heartbeat extends the rest of the lease
            except Rejected as error:
                log.warning("heartbeat refused (%s); still training", error)
            return

    def _release(self, lease: LeaseResponse) -> int:
        """Hand the live trials back (no attempt used); how many were not dropped."""
        assert lease.token is not None
        live = self._live(lease)
        released = 0
        for trial in live:
            body = TrialFailure(token=lease.token, error="worker stopped", release=True)
            try:
                self.client.failure(trial.trial_id, body, retry=False)
            except (ConnectionError, Stopped):
                break  # the lease expires on the server instead
            except Dropped as error:
                self._drop(trial.trial_id, error, "release")
            except Rejected as error:
                log.warning("release of trial %d refused: %s", trial.trial_id, error)
            else:
                released += 1
        self.stats.released += released
        return len(self._live(lease))  # those not taken back expire on the server

    def _fail(
        self, lease: LeaseResponse, error: str, trials: Sequence[LeasedTrial] | None = None
    ) -> int:
        """Report the live ones of `trials` (default: the lease's) failed; how many there were."""
        assert lease.token is not None
        log.warning("training failed: %s", error.splitlines()[0][:300])
        chosen = lease.trials if trials is None else trials
        live = [t for t in chosen if t.trial_id not in self._dropped]
        for trial in live:
            body = TrialFailure(token=lease.token, error=error[-10_000:])
            try:
                self.client.failure(trial.trial_id, body, retry=not self.stop.is_set())
            except (ConnectionError, Stopped):
                break
            except Dropped as dropped:
                self._drop(trial.trial_id, dropped, "failure")
            except Rejected as refused:
                log.warning("failure of trial %d refused: %s", trial.trial_id, refused)
            else:
                self.stats.failed += 1
        return len(live)

    def _deliver(self, *, retry: bool) -> None:
        """Send every finished result (retrying while unreachable when `retry`)."""
        while self.outbox:
            trial_id, result = self.outbox[0]
            try:
                self.client.result(trial_id, result, retry=retry)
            except ConnectionError:
                return
            except Dropped as error:
                self._drop(trial_id, error, "result")
            except Rejected as error:  # the server found the result invalid: report why
                log.warning("result of trial %d refused: %s", trial_id, error)
                failure = TrialFailure(token=result.token, error=f"result refused: {error}")
                with contextlib.suppress(ConnectionError, Rejected, Dropped):
                    self.client.failure(trial_id, failure, retry=False)
                self.stats.refused += 1
            else:
                self.stats.delivered += 1
            self.outbox.pop(0)
        stats = self.stats
        self.display.status(
            f"delivered {stats.delivered}, refused {stats.refused}, dropped {stats.dropped}"
        )
