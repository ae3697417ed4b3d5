"""Run independent training jobs on worker threads, one core each, reporting progress.

On a CPU, small batched models train faster as several single-threaded jobs (one per
core, each over its own slice of the configurations, working set in that core's cache)
than as one job whose every small operation is split across cores. torch releases the
GIL inside its kernels, so threads suffice. Every job thread flushes denormals to zero:
optimizer moments of dead units decay into the denormal range, where x86 arithmetic is
tens of times slower (the setting is per thread and changes only values below 1e-38).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

import torch

T = TypeVar("T")
J = TypeVar("J")
Tick = Callable[[int], None]

POLL_SECONDS = 0.1


class Counter:
    """A thread-safe counter of steps done."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        """Count `n` more steps."""
        with self._lock:
            self.value += n


def _flush_denormals() -> None:
    torch.set_flush_denormal(True)


def run_jobs(
    jobs: Sequence[J],
    work: Callable[[J, Tick], T],
    *,
    workers: int,
    total: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[T]:
    """`work(job, tick)` for every job on `workers` threads; results in job order.

    With several workers each runs single-threaded torch ops; with one, the job gets every
    intra-op thread. `progress(done, total)` is called from the calling thread only.
    """
    threads = torch.get_num_threads()
    workers = max(1, min(workers, len(jobs)))
    counter = Counter()
    if workers > 1:
        torch.set_num_threads(max(1, threads // workers))
    try:
        with ThreadPoolExecutor(workers, initializer=_flush_denormals) as pool:
            futures = [pool.submit(work, job, counter.add) for job in jobs]
            pending = set(futures)
            while pending:
                done, pending = wait(
                    pending, timeout=POLL_SECONDS if progress else None, return_when=FIRST_EXCEPTION
                )
                failed = next((f for f in done if f.exception() is not None), None)
                if failed is not None:
                    for f in pending:
                        f.cancel()
                    raise failed.exception()  # type: ignore[misc]
                if progress is not None:
                    progress(counter.value, total)
            return [f.result() for f in futures]
    finally:
        if workers > 1:
            torch.set_num_threads(threads)
