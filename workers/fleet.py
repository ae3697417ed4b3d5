"""`avatune worker --devices all|0,2`: one worker process per GPU, each on its own card.

The parent spawns `avatune worker --device cuda:N` children (N counts the GPUs
CUDA_VISIBLE_DEVICES leaves visible, as torch does), forwards SIGTERM and SIGINT to them,
waits for every one, and exits non-zero when any of them failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("avatune.worker")
#: `python -m studies` is the `avatune` command: children need no PATH.
WORKER_COMMAND = [sys.executable, "-m", "studies", "worker"]
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def parse_devices(spec: str, visible: int) -> list[int]:
    """'all' → every visible GPU's index; '0,2' → those. ValueError saying what to change."""
    where = os.environ.get("CUDA_VISIBLE_DEVICES")
    seen = "CUDA_VISIBLE_DEVICES unset" if where is None else f"CUDA_VISIBLE_DEVICES={where}"
    text = spec.strip().lower()
    if text == "all":
        if not visible:
            raise ValueError(f"--devices all, but no GPU is visible ({seen}); use --device cpu")
        return list(range(visible))
    indices: list[int] = []
    for part in text.split(","):
        item = part.strip().removeprefix("cuda:")
        if not item.isascii() or not item.isdigit():
            raise ValueError(f"{spec!r} is not 'all' or a comma list of GPU indices like 0,2")
        index = int(item)
        if index >= visible:
            count = "no GPU is" if not visible else f"only {visible} GPU(s) are"
            span = f"; use 0 to {visible - 1}" if visible else "; use --device cpu"
            raise ValueError(f"GPU {index} asked for, but {count} visible ({seen}){span}")
        if index in indices:
            raise ValueError(f"GPU {index} is listed twice in {spec!r}")
        indices.append(index)
    return indices


@dataclass
class Child:
    """One worker process of the fleet: its device, its command line, its process."""

    device: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None


def plan_children(
    indices: Sequence[int],
    options: Sequence[str],
    worker_id: str,
    command: Sequence[str] = WORKER_COMMAND,
) -> list[Child]:
    """`command OPTIONS --device cuda:N --worker-id ID-cudaN` per index (ID cut to fit the
    server's 100 characters)."""
    return [
        Child(
            f"cuda:{i}",
            [
                *command,
                *options,
                "--device",
                f"cuda:{i}",
                "--worker-id",
                f"{worker_id[:90]}-cuda{i}",
            ],
        )
        for i in indices
    ]


@dataclass
class _Forwarder:
    """The signal handler: passes SIGTERM / SIGINT on to every running child."""

    children: list[Child]
    received: list[int] = field(default_factory=list)

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        log.info("signal %d: passing it on to %d worker(s)", signum, len(self.children))
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signum)


def run_fleet(children: list[Child], env: dict[str, str] | None = None) -> int:
    """Start every child, forward signals, wait for all; the fleet's exit code.

    Call from the main thread (signal handlers); the previous handlers come back after."""
    forward = _Forwarder(children)
    previous = {sig: signal.signal(sig, forward) for sig in SIGNALS}
    codes: list[int] = []
    try:
        for child in children:
            if forward.received:
                break  # stopped while starting: start no more
            try:
                child.process = subprocess.Popen(
                    child.argv, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL
                )
            except OSError as error:
                log.error("cannot start the worker on %s: %s", child.device, error)
                codes.append(1)
                forward(signal.SIGTERM, None)  # the others stop too
                break
            log.info("worker on %s: pid %d", child.device, child.process.pid)
        for child in children:
            if child.process is None:
                continue
            code = child.process.wait()
            if code:
                log.error("the worker on %s exited with %d", child.device, code)
            codes.append(code)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return fleet_exit_code(codes, forward.received)


def fleet_exit_code(codes: Sequence[int], signals: Sequence[int]) -> int:
    """0 when every child exited 0; a child's failure otherwise (128 + N for a child killed
    by signal N), except that exiting 130 after SIGINT, as each child does, is no failure."""
    interrupted = signal.SIGINT in signals
    for code in codes:
        status = 128 - code if code < 0 else code
        if status and not (interrupted and status == 128 + signal.SIGINT):
            return status
    return 128 + signal.SIGINT if interrupted else 0
