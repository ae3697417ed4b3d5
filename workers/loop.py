"""The worker loop: lease → batched training with heartbeats → results, until stopped.

Training runs on a thread while the loop heartbeats the lease (one heartbeat extends the
whole lease). Results wait in an outbox until the server takes them: an unreachable
server is retried with backoff, and nothing new is leased before the outbox is empty.
A refused result (409: the lease expired and the trial went back to the queue) is
dropped. On SIGTERM or SIGINT the loop releases its current lease (the trials go back to
the queue without using an attempt), tries once more to deliver finished results, and
returns; the caller then exits even if the training thread is still running.

Events go to the `avatune.worker` logger, one line per lease among them (trials, task,
seconds, complete / diverged / failed, best value); the rich progress bars are only for a
terminal (`run_worker` shows them when stderr is a TTY).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from avatune.lease_client import Rejected, ServiceClient, Stopped, Unauthorized, WrongServer
from studies.protocol import (
    MAX_CURVE,
    Heartbeat,
    LeasedTrial,
    LeaseRequest,
    LeaseResponse,
    TrialFailure,
    TrialResult,
)
from studies.server_url import server_url, unreachable_message
from workers.diagnostics import DiagnosticsRecord, wire_diagnostics

if TYPE_CHECKING:  # the trainer imports torch; this module must not, until it trains
    from workers.capabilities import WorkerCapabilities
    from workers.trainer import TrialResult as TrainedSeed

ProgressFn = Callable[[int, int], None]
log = logging.getLogger("avatune.worker")
#: How often the loop looks at the training thread and the stop flag, seconds.
POLL_SECONDS = 0.2


@dataclass
class Outcome:
    """What training one leased trial produced (the value averaged over its seeds).

    `seed_values` etc. hold each seed's result when the trainer kept them; `chance` is the
    task's chance level, at which a diverged seed counts; `seed_diagnostics` each seed's
    mechanism records, when the fidelity asked for them and the optimizer has them.
    """

    value: float
    test_value: float | None = None
    curve: list[float] = field(default_factory=list)
    diverged: bool = False
    seconds: float = 0.0
    seed_values: list[float] | None = None
    seed_test_values: list[float] | None = None
    seed_diverged: list[bool] | None = None
    chance: float | None = None
    seed_diagnostics: list[list[DiagnosticsRecord]] | None = None


def seed_outcome(runs: Sequence[TrainedSeed], chance: float) -> Outcome:
    """One trial's outcome from its seeds' runs: each seed chance-clipped (a diverged seed
    at chance, the others unchanged below it), the value their mean, diverged if any seed."""
    flags = [r.diverged for r in runs]
    values = [chance if d else min(r.objective, chance) for r, d in zip(runs, flags, strict=True)]
    tests = [chance if d else min(r.test_metric, chance) for r, d in zip(runs, flags, strict=True)]
    finite_tests = all(math.isfinite(t) for t in tests)
    return Outcome(
        value=math.fsum(values) / len(values),
        test_value=math.fsum(tests) / len(tests) if finite_tests else None,
        curve=_mean_curve([r.curve for r in runs]),
        diverged=any(flags),
        seconds=max(r.seconds for r in runs),
        seed_values=values,
        seed_test_values=tests if finite_tests else None,
        seed_diverged=flags,
        chance=chance,
        seed_diagnostics=[r.diagnostics for r in runs]
        if any(r.diagnostics for r in runs)
        else None,
    )


#: Trains every trial of a lease; outcomes in the lease's trial order.
Trainer = Callable[[LeaseResponse, ProgressFn], list[Outcome]]


def _mean_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    length = min((len(c) for c in curves), default=0)
    return [sum(c[k] for c in curves) / len(curves) for k in range(length)]


def torch_trainer(device: str | None = None) -> Trainer:
    """The real trainer (workers.trainer): one batched `train` call per optimizer setting, on
    the task built with the lease's options (a lease holds trials of one task config)."""

    def train_lease(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        from workers.tasks import get_task
        from workers.trainer import TrialConfig, train

        assert lease.task is not None and lease.fidelity is not None
        fidelity = lease.fidelity
        task = get_task(lease.task.name, lease.task.config)  # the lease's options, one task
        chance = task.chance
        seeds = [fidelity.seed + s for s in range(fidelity.seeds)]
        groups: dict[str, list[int]] = {}
        for index, trial in enumerate(lease.trials):
            groups.setdefault(trial.optimizer.model_dump_json(), []).append(index)
        outcomes: list[Outcome | None] = [None] * len(lease.trials)
        finished_steps = 0
        for members in groups.values():
            ref = lease.trials[members[0]].optimizer
            configs = [
                TrialConfig(lr=lease.trials[i].alpha, eps=lease.trials[i].eps, seed=s)
                for i in members
                for s in seeds
            ]
            last_total = [0]

            def report(
                done: int, total: int, base: int = finished_steps, seen: list[int] = last_total
            ) -> None:
                seen[0] = total
                progress(base + done, base + total)

            results = train(
                task,
                ref.name,
                configs,
                steps=fidelity.steps,
                batch_size=fidelity.batch_size,
                device=device,
                optimizer_settings=ref.train_settings(),
                progress=report,
                diagnostics_every=fidelity.diagnostics_every,
                eps_arg=ref.eps_arg,
            )
            finished_steps += last_total[0]
            for k, index in enumerate(members):
                runs = results[k * len(seeds) : (k + 1) * len(seeds)]
                outcomes[index] = seed_outcome(runs, chance)
        return [o for o in outcomes if o is not None]

    return train_lease


def default_worker_id() -> str:
    """hostname-pid-random: unique per worker process."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host[:60] or 'worker'}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Display:
    """A rich progress bar per lease (on a terminal; log lines print above the bars)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, log_path=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
        )
        self._task: Any = None

    def __enter__(self) -> Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def lease(self, lease: LeaseResponse) -> None:
        """A new bar for a lease."""
        if self._task is not None:
            self.progress.remove_task(self._task)
        names = sorted({t.optimizer.name for t in lease.trials})
        task = lease.task.name if lease.task else "?"
        self._task = self.progress.add_task(
            f"{len(lease.trials)} trials · {task} · {', '.join(names)}", total=None, status=""
        )

    def update(self, done: int, total: int) -> None:
        """Move the current bar (training steps done of total)."""
        if self._task is not None:
            self.progress.update(self._task, completed=done, total=total or None)

    def status(self, text: str) -> None:
        """The text after the current bar."""
        if self._task is not None:
            self.progress.update(self._task, status=text)


class _Quiet:
    def lease(self, lease: LeaseResponse) -> None:
        pass

    def update(self, done: int, total: int) -> None:
        pass

    def status(self, text: str) -> None:
        pass


@dataclass
class LeaseTally:
    """What one lease's trials came to (released: handed back when the worker stopped)."""

    complete: int = 0
    diverged: int = 0
    failed: int = 0
    released: int = 0
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
            "best": tally.best,
        },
    )


@dataclass
class WorkerStats:
    """What a worker did."""

    leases: int = 0
    delivered: int = 0
    refused: int = 0
    released: int = 0
    failed: int = 0


class WorkerLoop:
    """Lease, train, report — until stopped, or once with `once`."""

    def __init__(
        self,
        client: ServiceClient,
        trainer: Trainer,
        *,
        worker_id: str | None = None,
        max_batch: int = 64,
        once: bool = False,
        device: str | None = None,
        display: Display | None = None,
        stop: threading.Event | None = None,
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
        self.display: Display | _Quiet = display or _Quiet()
        self.stop = stop or client.stop
        client.stop = self.stop
        self.outbox: list[tuple[int, TrialResult]] = []
        self.stats = WorkerStats()
        self.training: threading.Thread | None = None
        #: The signal that stopped the loop, if one did (the process exits 130 on SIGINT).
        self.signal: int | None = None

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
        tally = self._train_lease(lease)
        log_lease(lease, tally, time.monotonic() - started)

    def _train_lease(self, lease: LeaseResponse) -> LeaseTally:
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
        lost = False
        next_beat = time.monotonic() + lease.heartbeat_seconds
        while True:
            self.training.join(timeout=max(0.0, min(POLL_SECONDS, next_beat - time.monotonic())))
            if not self.training.is_alive():
                break
            if self.stop.is_set():
                self._release(lease)
                tally.released = len(lease.trials)
                return tally
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + lease.heartbeat_seconds
                if not lost:
                    lost = not self._heartbeat(lease, steps)
        if "error" in box:
            self._fail(lease, f"{type(box['error']).__name__}: {box['error']}\n{box['trace']}")
            tally.failed = len(lease.trials)
            return tally
        outcomes: list[Outcome] = box["outcomes"]
        if len(outcomes) != len(lease.trials):
            self._fail(
                lease, f"trainer returned {len(outcomes)} outcomes for {len(lease.trials)} trials"
            )
            tally.failed = len(lease.trials)
            return tally
        for trial, outcome in zip(lease.trials, outcomes, strict=True):
            try:
                self.outbox.append((trial.trial_id, _result(lease.token, outcome)))
            except ValidationError as error:
                self._fail(lease, f"the trainer's result is invalid: {error}", [trial])
                tally.failed += 1
            else:
                tally.count(outcome)
        self.display.update(steps[1], steps[1])
        self.display.status("reporting")
        return tally

    def _heartbeat(self, lease: LeaseResponse, steps: list[int]) -> bool:
        """Extend the lease; False once the server says it is lost."""
        assert lease.token is not None
        beat = Heartbeat(token=lease.token, done=steps[0], total=steps[1])
        try:
            ack = self.client.heartbeat(lease.trials[0].trial_id, beat)
        except ConnectionError as error:
            log.warning("heartbeat failed (%s); still training", error)
            return True
        if ack is None:
            log.warning("the lease was lost (expired): results of this lease will be refused")
            return False
        return True

    def _release(self, lease: LeaseResponse) -> None:
        assert lease.token is not None
        for trial in lease.trials:
            body = TrialFailure(token=lease.token, error="worker stopped", release=True)
            try:
                if self.client.failure(trial.trial_id, body, retry=False):
                    self.stats.released += 1
            except (ConnectionError, Stopped):
                break  # the lease expires on the server instead

    def _fail(
        self, lease: LeaseResponse, error: str, trials: Sequence[LeasedTrial] | None = None
    ) -> None:
        assert lease.token is not None
        log.warning("training failed: %s", error.splitlines()[0][:300])
        for trial in lease.trials if trials is None else trials:
            body = TrialFailure(token=lease.token, error=error[-10_000:])
            try:
                self.client.failure(trial.trial_id, body, retry=not self.stop.is_set())
                self.stats.failed += 1
            except (ConnectionError, Stopped):
                break

    def _deliver(self, *, retry: bool) -> None:
        """Send every finished result (retrying while unreachable when `retry`)."""
        while self.outbox:
            trial_id, result = self.outbox[0]
            try:
                taken = self.client.result(trial_id, result, retry=retry)
            except ConnectionError:
                return
            except Rejected as error:  # the server found the result invalid: report why
                log.warning("result of trial %d refused: %s", trial_id, error)
                failure = TrialFailure(token=result.token, error=f"result refused: {error}")
                with contextlib.suppress(ConnectionError, Rejected):
                    self.client.failure(trial_id, failure, retry=False)
                taken = False
            self.outbox.pop(0)
            if taken:
                self.stats.delivered += 1
            else:
                self.stats.refused += 1
        stats = self.stats
        self.display.status(f"delivered {stats.delivered}, refused {stats.refused}")


def _result(token: str, outcome: Outcome) -> TrialResult:
    """The wire result (non-finite curve points dropped; ValidationError on a bad value)."""
    test = outcome.test_value
    return TrialResult(
        token=token,
        value=outcome.value,
        test_value=test if test is not None and math.isfinite(test) else None,
        curve=[v for v in outcome.curve if math.isfinite(v)][:MAX_CURVE],
        diverged=outcome.diverged,
        seconds=max(0.0, outcome.seconds),
        seed_values=outcome.seed_values,
        seed_test_values=outcome.seed_test_values,
        seed_diverged=outcome.seed_diverged,
        chance=outcome.chance,
        seed_diagnostics=wire_diagnostics(outcome.seed_diagnostics),
    )


def load_trainer(spec: str) -> Trainer:
    """A trainer named ``module:attribute`` (tests and custom training code)."""
    import importlib

    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"--train-function needs MODULE:ATTRIBUTE, got {spec!r}")
    return getattr(importlib.import_module(module), attribute)


def describe_device(device: str | None) -> str:
    """e.g. 'cuda:0 NVIDIA H100' or 'cpu' (ValueError on an unusable device)."""
    import torch

    from workers.device import resolve_device

    where = resolve_device(device)
    if where.type == "cuda":
        return f"{where} {torch.cuda.get_device_name(where)}"[:200]
    return str(where)


def run_worker(
    server: str,
    token: str | None,
    *,
    device: str | None,
    max_batch: int,
    once: bool,
    quiet: bool = False,
    train_function: str | None = None,
) -> WorkerStats:
    """`avatune worker`: build the client and loop, handle signals, run until stopped.

    Exits 1 when the server is unreachable with `once` or is not an avatune server, 2 on a
    refused token, 130 after SIGINT (ValueError on a malformed `server`, before torch loads).
    """
    server = server_url(server)
    capabilities = None  # a custom trainer advertises no lists: it runs anything
    if train_function:
        try:
            trainer, described = load_trainer(train_function), device or "custom"
        except (ValueError, ImportError, AttributeError) as error:
            log.error("--train-function %s: %s", train_function, error)
            raise SystemExit(2) from None
    else:
        try:
            described = describe_device(device)
        except ValueError as error:  # e.g. cuda asked for on a machine without CUDA
            log.error("--device: %s", error)
            raise SystemExit(2) from None
        trainer = torch_trainer(device)
        from workers.capabilities import WorkerCapabilities

        capabilities = WorkerCapabilities.discover()
    # Progress bars only on a terminal: under nohup or a supervisor, plain log lines.
    display = None if quiet or not sys.stderr.isatty() else Display()

    def retrying(reason: str, delay: float) -> None:
        log.warning("server unreachable (%s); retrying in %.1f s", reason, delay)

    client = ServiceClient(server, token, on_retry=retrying)
    loop = WorkerLoop(
        client,
        trainer,
        max_batch=max_batch,
        once=once,
        device=described,
        display=display,
        capabilities=capabilities,
    )
    loop.install_signal_handlers()
    started = {"worker": loop.worker_id, "device": described, "server": server}
    try:
        with display or contextlib.nullcontext():
            log.info("worker %s on %s → %s", loop.worker_id, described, server, extra=started)
            stats = loop.run()
    except Unauthorized as error:
        log.error("the server refused this worker's token: %s", error)
        raise SystemExit(2) from None
    except ConnectionError as error:  # only with --once: without, the loop waits it out
        log.error("%s", unreachable_message(client.url, str(error)))
        raise SystemExit(1) from None
    except WrongServer as error:
        log.error("%s", error)
        raise SystemExit(1) from None
    finally:
        client.close()
    log.info(
        "worker %s: %d leases, %d results delivered, %d refused, %d released, %d failed",
        loop.worker_id,
        stats.leases,
        stats.delivered,
        stats.refused,
        stats.released,
        stats.failed,
        extra={"worker": loop.worker_id, **vars(stats)},
    )
    if loop.training is not None and loop.training.is_alive():
        os._exit(exit_code(loop))  # an abandoned training thread would only delay the exit
    if exit_code(loop):
        raise SystemExit(exit_code(loop))
    return stats


def exit_code(loop: WorkerLoop) -> int:
    """130 after SIGINT (the shell's convention for Ctrl-C); 0 otherwise, SIGTERM included
    (a supervisor's clean stop)."""
    return 128 + signal.SIGINT if loop.signal == signal.SIGINT else 0
