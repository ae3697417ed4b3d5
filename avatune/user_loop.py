"""Your own training loop as a worker: lease one trial of a study at a time, heartbeat in
the background, report a value or a failure.

`TrialStream` (what `Client.trials(study)` returns) leases trials one by one with
``LeaseRequest(study_id=..., max_trials=1)`` and yields a `TrialHandle` for each; a
background thread heartbeats the lease every `heartbeat_seconds` until the handle is
settled (reported, failed or released). Leaving the loop body without settling the
handle, breaking out of the loop or an exception escaping it hands the lease back
(a release costs the trial no attempt). SIGTERM (when iterating on the main thread) and
Ctrl-C do the same, then stop: SIGTERM raises `Terminated` (a SystemExit, status 143),
Ctrl-C the usual KeyboardInterrupt. Leases, results and failures are retried while the
server is unreachable (`avatune.lease_client`), so a loop outlives a server restart.
A trial the server no longer holds (404: its study was deleted; 409: its lease expired) is
"refused": heartbeats stop and its report returns False.
The stream ends when the study is done, failed or cancelled (an empty lease, then the
study's state), or after `max_trials` trials.

`run_trials(study, train_fn)` is that loop with `train_fn(trial)` as its body.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from avatune.errors import ServerUnreachable, TrialSettled, WrongStudy
from avatune.lease_client import Backoff, Dropped, ServiceClient, Stopped
from studies.protocol import (
    MAX_CURVE,
    Heartbeat,
    LeasedTrial,
    LeaseRequest,
    LeaseResponse,
    TrialFailure,
    TrialResult,
)
from studies.schemas import BestTrial
from studies.specs import Fidelity, OptimizerRef, TaskRef

if TYPE_CHECKING:
    from avatune.client import Client

log = logging.getLogger("avatune.client")
#: Study states after which nothing is left to lease.
FINISHED = ("done", "failed", "cancelled")
#: Characters of a failure's error the server keeps (the traceback's tail is kept).
MAX_ERROR = 10_000
TrialState = Literal["leased", "reported", "failed", "released", "refused", "abandoned"]


@dataclass(frozen=True)
class Result:
    """What one training produced: the objective (lower is better; finite), and
    optionally a test metric, a learning curve (at most 1000 points reach the server,
    evenly thinned; non-finite points dropped) and whether the run diverged (a diverged
    run is a result: give it a finite, bad value)."""

    value: float
    test_value: float | None = None
    curve: Sequence[float] = ()
    diverged: bool = False


class Terminated(SystemExit):
    """SIGTERM arrived while leasing or training: the lease was handed back. A SystemExit,
    so an uncaught one ends the process quietly with status 143 (128 + SIGTERM)."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


class TrialHandle:
    """One leased trial of a study: the point to train and how to report on it.

    Settle it once: `report` a value, `fail` with an error (costs an attempt; the trial is
    retried until the server's max attempts), or `release` it (back to the queue, no
    attempt used). `progress(done, total)` sets what the next heartbeat tells the server.
    """

    def __init__(
        self,
        lease: LeaseResponse,
        trial: LeasedTrial,
        service: ServiceClient,
        beats: ServiceClient,
        on_settle: Callable[[TrialHandle], None],
    ) -> None:
        assert lease.token is not None and lease.task is not None and lease.fidelity is not None
        self.trial_id: int = trial.trial_id
        self.study_id: int = trial.study_id
        #: Order of the tuner's asks in the study.
        self.number: int = trial.number
        self.alpha: float = trial.alpha
        self.eps: float = trial.eps
        self.optimizer: OptimizerRef = trial.optimizer
        self.task: TaskRef = lease.task
        self.fidelity: Fidelity = lease.fidelity
        self.state: TrialState = "leased"
        #: The value reported (None until then).
        self.value: float | None = None
        self._token = lease.token
        self._service = service
        self._on_settle = on_settle
        self._started = time.monotonic()
        self._steps = (0, 0)
        self._lost = threading.Event()
        self._stop_beats = threading.Event()
        self._beats = threading.Thread(
            target=self._heartbeat,
            args=(beats, lease.heartbeat_seconds),
            name=f"avatune-heartbeat-{trial.trial_id}",
            daemon=True,
        )
        self._beats.start()

    def __repr__(self) -> str:
        return (
            f"TrialHandle(trial_id={self.trial_id}, study_id={self.study_id}, "
            f"number={self.number}, alpha={self.alpha:g}, eps={self.eps:g}, "
            f"optimizer={self.optimizer.name!r}, state={self.state!r})"
        )

    @property
    def lost(self) -> bool:
        """Whether a heartbeat found the lease gone (expired, or the trial deleted)."""
        return self._lost.is_set()

    def progress(self, done: int, total: int) -> None:
        """Record progress (e.g. steps done of total) for the next heartbeat to carry."""
        self._steps = (max(0, int(done)), max(0, int(total)))

    def report(
        self,
        value: float | Result,
        *,
        test_value: float | None = None,
        curve: Sequence[float] = (),
        diverged: bool = False,
    ) -> bool:
        """Report the training's result (a number, or a `Result`); True when the server
        recorded it, False when it refused it (the lease was lost, or the trial deleted).
        Waits out an unreachable server. ValueError (nothing sent) when the value is not finite;
        TrialSettled when the trial was settled already."""
        if isinstance(value, Result):
            if test_value is not None or curve or diverged:
                raise TypeError("give a Result or the fields as keywords, not both")
            result = value
        else:
            result = Result(_number(value), test_value, curve, diverged)
        body = _wire_result(self._token, result, time.monotonic() - self._started)
        send = functools.partial(self._service.result, self.trial_id, body)
        return self._settle("reported", send, value=body.value)

    def fail(self, error: BaseException | str) -> bool:
        """Report that the training could not finish (an exception: its traceback is sent);
        the trial uses an attempt. True when recorded, False when refused."""
        text = (
            "".join(traceback.format_exception(error))
            if isinstance(error, BaseException)
            else error
        )
        body = TrialFailure(token=self._token, error=text[-MAX_ERROR:] or "failed")
        return self._settle("failed", functools.partial(self._service.failure, self.trial_id, body))

    def release(self) -> bool:
        """Hand the trial back untrained (no attempt used). Not retried: if the server
        cannot be reached, the lease expires there instead (state "abandoned")."""
        body = TrialFailure(token=self._token, error="released by the user's loop", release=True)
        try:
            send = functools.partial(self._service.failure, self.trial_id, body, retry=False)
            return self._settle("released", send)
        except (ConnectionError, Stopped):
            self._finish("abandoned")
            return False

    def _settle(
        self, state: TrialState, send: Callable[[], object], value: float | None = None
    ) -> bool:
        if self.state != "leased":
            raise TrialSettled(
                f"trial {self.trial_id} is already {self.state}: report, fail or release a "
                "trial once"
            )
        self.value = value
        try:
            send()  # heartbeats go on while a delivery waits for the server
        except Dropped as error:
            log.warning("trial %d refused: %s", self.trial_id, error)
            self._finish("refused")
            return False
        self._finish(state)
        return True

    def _finish(self, state: TrialState) -> None:
        self.state = state
        self._stop_beats.set()
        self._on_settle(self)

    def _heartbeat(self, beats: ServiceClient, every: float) -> None:
        """Extend the lease every `every` seconds until settled or lost."""
        while not self._stop_beats.wait(every):
            done, total = self._steps
            try:
                beats.heartbeat(self.trial_id, Heartbeat(token=self._token, done=done, total=total))
            except ConnectionError as error:
                log.debug("heartbeat of trial %d failed (%s); retrying", self.trial_id, error)
                continue
            except Dropped as error:  # expired, or the study was deleted: beating is over
                if not self._stop_beats.is_set():
                    log.warning("the lease on trial %d was lost: %s", self.trial_id, error)
                    self._lost.set()
                return
            except Exception as error:  # a refused beat must not end the thread silently
                log.warning("heartbeat of trial %d refused: %s", self.trial_id, error)
                continue


def _number(value: object) -> float:
    """`value` as a float (numpy and torch scalars too); TypeError saying what to give."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"a trial's value is a number or a Result, got {type(value).__name__}"
        ) from None


def _thin(curve: Sequence[float]) -> list[float]:
    """Finite points of `curve`, evenly thinned to at most MAX_CURVE (the last one kept)."""
    points = [float(v) for v in curve if math.isfinite(float(v))]
    if len(points) <= MAX_CURVE:
        return points
    step = (len(points) - 1) / (MAX_CURVE - 1)
    return [points[round(k * step)] for k in range(MAX_CURVE)]


def _wire_result(token: str, result: Result, seconds: float) -> TrialResult:
    """The wire body of `result`; ValueError saying what to change when it is invalid."""
    value = _number(result.value)
    if not math.isfinite(value):
        raise ValueError(
            f"a trial's value must be a finite number, got {value}: for a run that diverged, "
            "report a finite bad value with diverged=True"
        )
    test = None if result.test_value is None else _number(result.test_value)
    try:
        return TrialResult(
            token=token,
            value=value,
            test_value=test if test is not None and math.isfinite(test) else None,
            curve=_thin(result.curve),
            diverged=bool(result.diverged),
            seconds=max(0.0, seconds),
        )
    except ValidationError as error:
        raise ValueError(f"invalid result: {error}") from None


@dataclass
class RunSummary:
    """What a loop did: trials leased, results the server took, failures reported, trials
    handed back, reports refused (lost leases), the best value reported, and why it ended."""

    leased: int = 0
    reported: int = 0
    failed: int = 0
    released: int = 0
    refused: int = 0
    best: BestTrial | None = None
    #: "study done", "study failed", "study cancelled" or "max_trials"; "" while running
    #: or when stopped by an error, SIGTERM or Ctrl-C.
    ended: str = ""

    def count(self, handle: TrialHandle) -> None:
        """Count a settled handle (and keep the lowest value reported)."""
        value = handle.value
        if handle.state == "reported":
            self.reported += 1
            if value is not None and (self.best is None or value < self.best.value):
                self.best = BestTrial(
                    trial_id=handle.trial_id, value=value, alpha=handle.alpha, eps=handle.eps
                )
        elif handle.state == "failed":
            self.failed += 1
        elif handle.state in ("released", "abandoned"):
            self.released += 1
        elif handle.state == "refused":
            self.refused += 1


def default_worker_id() -> str:
    """host-pid-loop-random: this loop's worker id on the server."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host[:60] or 'host'}-{os.getpid()}-loop-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def _sigterm_raises(enabled: bool) -> Iterator[None]:
    """While inside: SIGTERM raises `Terminated` (main thread only; the previous handler
    is restored after)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():  # None: set outside Python
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


class TrialStream:
    """The trials of one study, leased one at a time (iterate; `close` or a `with` block
    hands back a trial still held). `summary` counts what happened."""

    def __init__(
        self,
        client: Client,
        study_id: int,
        *,
        max_trials: int | None = None,
        worker_id: str | None = None,
        signals: bool = True,
    ) -> None:
        if max_trials is not None and max_trials < 1:
            raise ValueError(f"max_trials must be at least 1, got {max_trials}")
        self.client = client
        self.study_id = study_id
        self.max_trials = max_trials
        self.worker_id = worker_id or default_worker_id()
        self.signals = signals
        self.summary = RunSummary()
        self._generator = _lease_trials(
            client,
            study_id,
            self.summary,
            max_trials=max_trials,
            worker_id=self.worker_id,
            signals=signals,
        )

    def __iter__(self) -> TrialStream:
        return self

    def __next__(self) -> TrialHandle:
        return next(self._generator)

    def close(self) -> None:
        """Stop: hand back the trial held, if any (its release costs no attempt)."""
        self._generator.close()

    def __enter__(self) -> TrialStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lease_trials(
    client: Client,
    study_id: int,
    summary: RunSummary,
    *,
    max_trials: int | None,
    worker_id: str,
    signals: bool,
) -> Iterator[TrialHandle]:
    """The loop behind `TrialStream` (a function, not a method: the stream owns the
    generator and nothing here refers back to it, so dropping the stream closes it)."""
    service, beats = client._service_client(), client._service_client()
    request = LeaseRequest(
        worker_id=worker_id,
        max_trials=1,
        study_id=study_id,
        name="user loop",
        host=socket.gethostname()[:200] or None,
    )
    handle: TrialHandle | None = None
    try:
        with _sigterm_raises(signals):
            while max_trials is None or summary.leased < max_trials:
                lease = service.lease(request)  # waits out an unreachable server
                if not lease.trials:
                    state = _study_state(client, study_id, service.backoff)
                    if state in FINISHED:
                        summary.ended = f"study {state}"
                        return
                    time.sleep(lease.retry_after or 1.0)
                    continue
                handle = TrialHandle(lease, lease.trials[0], service, beats, summary.count)
                summary.leased += 1
                if handle.study_id != study_id:
                    handle.release()
                    raise WrongStudy(
                        f"asked for trials of study {study_id}, the server leased trial "
                        f"{handle.trial_id} of study {handle.study_id} (handed back): upgrade "
                        "the server, it ignores the lease's study_id"
                    )
                yield handle
                if handle.state == "leased":  # the loop body left it unsettled
                    handle.release()
                handle = None
            summary.ended = "max_trials"
    finally:
        if handle is not None and handle.state == "leased":
            with contextlib.suppress(Exception):
                handle.release()
        service.close()
        beats.close()


def _study_state(client: Client, study_id: int, backoff: Backoff) -> str:
    """The study's state, asked again while the server is unreachable."""
    delays = backoff.delays()
    while True:
        try:
            return client.study(study_id).state
        except ServerUnreachable as error:
            delay = delays()
            log.warning("%s; retrying in %.1f s", error, delay)
            time.sleep(delay)


def run_trials(
    stream: TrialStream,
    train_fn: Callable[[TrialHandle], float | Result | None],
    *,
    stop_on_error: bool = False,
) -> RunSummary:
    """Train each trial of `stream` with `train_fn` and report what it returns.

    An exception in `train_fn` is reported as the trial's failure, with its traceback
    (the trial uses an attempt), and the loop goes on; with `stop_on_error` it is raised
    after reporting. A return of None is fine when `train_fn` reported the trial itself.
    """
    with stream:
        for trial in stream:
            try:
                outcome = train_fn(trial)
            except Exception as error:
                log.warning("trial %d failed: %s: %s", trial.trial_id, type(error).__name__, error)
                trial.fail(error)
                if stop_on_error:
                    raise
                continue
            if trial.state != "leased":  # train_fn settled it itself
                continue
            if outcome is None:
                trial.fail("train_fn returned None: return the objective (a number) or a Result")
                continue
            try:
                trial.report(outcome)
            except (TypeError, ValueError) as error:
                log.warning("trial %d: %s", trial.trial_id, error)
                trial.fail(f"train_fn returned an invalid result: {error}")
                if stop_on_error:
                    raise
    return stream.summary
