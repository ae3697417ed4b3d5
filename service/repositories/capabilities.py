"""What workers can run: names a worker should probe, and why a study is waiting for one.

A worker advertises the tasks and optimizers it can run with each lease request; the server
hands it only trials of those (`service.leases`). What running studies need and a worker
has not yet said it can or cannot run comes back with every lease, for it to probe. A
running study that no worker seen lately can run says why on its page and in the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from service.db import Database
from service.models import Study, StudyState, Worker
from service.process_cache import RunningNames
from studies.protocol import MAX_PROBES, Capabilities, Capability, LeaseRequest
from studies.specs import EXTERNAL_TASK

#: A worker seen this recently counts as available.
LIVE_SECONDS = 600.0
#: Seconds an API process reuses its list of what running studies need.
NAMES_SECONDS = 1.0


def to_probe(db: Database, conn: Connection, request: LeaseRequest) -> list[Capability]:
    """The tasks and optimizers of running studies that this worker neither advertised nor
    listed as unable (none for a worker that advertises no lists, or leases one study)."""
    if request.study_id is not None or (request.tasks is None and request.optimizers is None):
        return []
    said = request.capabilities()
    wanted: dict[Capability, None] = {}
    for task, optimizer in _running_names(db, conn):
        for kind, name in (("task", task), ("optimizer", optimizer)):
            if not said.knows(kind, name):
                wanted[Capability(kind=kind, name=name)] = None
    return list(wanted)[:MAX_PROBES]


def _running_names(db: Database, conn: Connection) -> list[tuple[str, str]]:
    """The (task, optimizer) of running studies, read at most every `NAMES_SECONDS` per API
    process (every lease asks)."""
    cached = db.cache.running_names
    if cached is not None and time.monotonic() < cached.until:
        return cached.names
    rows = conn.execute(
        select(Study.task, Study.optimizer)
        .where(Study.state == StudyState.running, Study.task != EXTERNAL_TASK)
        .distinct()
    ).all()
    names = [(r.task, r.optimizer) for r in rows]
    db.cache.running_names = RunningNames(time.monotonic() + NAMES_SECONDS, names)
    return names


@dataclass(frozen=True)
class LiveWorker:
    """A worker seen within `LIVE_SECONDS`, and what it said it can run."""

    id: str
    capabilities: Capabilities | None


def live_workers(conn: Connection, now: datetime) -> list[LiveWorker]:
    """Workers seen lately (a worker from before capabilities were kept runs anything)."""
    since = now - timedelta(seconds=LIVE_SECONDS)
    rows = conn.execute(
        select(Worker.id, Worker.capabilities).where(Worker.last_seen >= since)
    ).all()
    return [
        LiveWorker(
            r.id, None if r.capabilities is None else Capabilities.model_validate(r.capabilities)
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Need:
    """A study that has trainings to hand out, and what a worker needs to run them."""

    study_id: int
    task: str
    optimizer: str


def waiting_reason(need: Need, workers: Iterable[LiveWorker]) -> str | None:
    """Why no worker seen lately would lease `need`'s trials, with what those that tried
    said; None when one would."""
    workers = list(workers)
    minutes = f"{LIVE_SECONDS / 60:g} minutes"
    key = need.study_id, need.task, need.optimizer
    if any(w.capabilities is None or w.capabilities.can_run(*key) for w in workers):
        return None
    if need.task == EXTERNAL_TASK:
        return (
            f"waiting for a training loop of your own: no client has leased from study "
            f"{need.study_id} in the last {minutes} (avatune.client: run_trials or trials)"
        )
    if not workers:
        return f"waiting for a worker: none has asked for trials in the last {minutes}"
    general = {  # workers with lists (not one study's own loop)
        w.id: w.capabilities
        for w in workers
        if w.capabilities is not None and w.capabilities.study_id is None
    }
    lacking = [
        f"{kind} {name!r}"
        for kind, name in (("task", need.task), ("optimizer", need.optimizer))
        if not any(c.advertises(kind, name) for c in general.values())
    ]
    what = " and ".join(lacking) or "this task and optimizer together"
    reason = (
        f"waiting for a worker that can run {what}: none of the {len(workers)} seen in the "
        f"last {minutes} has advertised {'it' if len(lacking) == 1 else 'them'}"
    )
    errors = [
        f"{worker}: {u.error}" if u.error else worker
        for worker, said in general.items()
        for u in said.unable
        if (u.kind, u.name) in (("task", need.task), ("optimizer", need.optimizer))
    ]
    if errors:
        reason += f"; cannot import it: {'; '.join(errors[:3])}"
        if len(errors) > 3:
            reason += f"; and {len(errors) - 3} more"
    return reason
