"""What one API process keeps in memory between requests: hints and throttles, never state.

Everything here can be lost (a restart, a second API process) without changing what the
database says: the next reap time, the best value per study (a hint below which a result
writes the study's best), worker lease counts not yet written, the names running studies
need, and the reports being computed on background threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class WorkerTally:
    """A worker's leases and leased trials not yet written, and when its row is next due."""

    leases: int = 0
    trials: int = 0
    next_write: float = 0.0


@dataclass(frozen=True)
class RunningNames:
    """The (task, optimizer) of running studies, reused until `until` (monotonic seconds)."""

    until: float
    names: list[tuple[str, str]]


@dataclass
class ProcessCache:
    """The per-process bookkeeping of a `service.db.Database`."""

    #: When expired leases are next looked for (`time.monotonic()`).
    next_reap: float = 0.0
    #: The lowest value reported per study id by this process (never below the stored best).
    best: dict[int, float] = field(default_factory=dict)
    #: Lease counts per worker id, written to its row at most once a second.
    workers: dict[str, WorkerTally] = field(default_factory=dict)
    #: What running studies need, reused for a second (every lease asks).
    running_names: RunningNames | None = None
    #: Experiments whose report a background thread computes now.
    reports_running: set[int] = field(default_factory=set)
    #: The message of each report computation that failed, until a client is told.
    report_errors: dict[int, str] = field(default_factory=dict)
    #: Guards `reports_running` and `report_errors`.
    reports_lock: threading.Lock = field(default_factory=threading.Lock)
