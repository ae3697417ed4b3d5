"""Workers: who has asked for trials, when they were last seen, and what they did."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.db import Database
from service.models import Trial, TrialState, Worker
from service.process_cache import WorkerTally
from studies.protocol import LeaseRequest
from studies.schemas import WorkerOut

#: Seconds between two writes of one worker's row (per API process).
WORKER_WRITE_SECONDS = 1.0
_NOW = bindparam("now")


def _upsert_worker(insert: Any) -> Any:
    stmt = insert(Worker).values(
        id=bindparam("worker"),
        name=bindparam("name"),
        host=bindparam("host"),
        device=bindparam("device"),
        capabilities=bindparam("capabilities"),
        first_seen=_NOW,
        last_seen=_NOW,
        leases=bindparam("leases"),
        trials_leased=bindparam("n"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[Worker.id],
        set_=dict(
            name=stmt.excluded.name,
            host=stmt.excluded.host,
            device=stmt.excluded.device,
            capabilities=stmt.excluded.capabilities,
            last_seen=stmt.excluded.last_seen,
            leases=Worker.leases + stmt.excluded.leases,
            trials_leased=Worker.trials_leased + stmt.excluded.trials_leased,
        ),
    )


_UPSERT_WORKER = {"postgresql": _upsert_worker(pg_insert), "sqlite": _upsert_worker(sqlite_insert)}


def touch(db: Database, conn: Connection, request: LeaseRequest, now: datetime, n: int) -> None:
    """Record that a worker leased `n` trials, and what it can run: its row is written at
    most once a second per API process (its lease counts add up in memory meanwhile)."""
    tally = db.cache.workers.get(request.worker_id)
    if tally is None:
        tally = db.cache.workers[request.worker_id] = WorkerTally()
    tally.leases += 1 if n else 0
    tally.trials += n
    if time.monotonic() < tally.next_write:
        return
    conn.execute(
        _UPSERT_WORKER[db.dialect],
        {
            "worker": request.worker_id,
            "name": request.name,
            "host": request.host,
            "device": request.device,
            "capabilities": request.capabilities().model_dump(mode="json"),
            "now": now,
            "leases": tally.leases,
            "n": tally.trials,
        },
    )
    tally.leases, tally.trials = 0, 0
    tally.next_write = time.monotonic() + WORKER_WRITE_SECONDS


def list_workers(conn: Connection, now: datetime, *, limit: int = 500) -> list[WorkerOut]:
    """Workers, most recently seen first, with their live and finished trials."""
    rows = conn.execute(select(Worker).order_by(Worker.last_seen.desc()).limit(limit)).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for worker_id, state, n in conn.execute(
        select(Trial.worker_id, Trial.state, func.count())
        .where(Trial.worker_id.in_(ids), Trial.source_trial_id.is_(None))
        .group_by(Trial.worker_id, Trial.state)
    ).all():
        if state in (TrialState.complete, TrialState.diverged):
            tally[worker_id]["complete"] += n
        elif state == TrialState.failed:
            tally[worker_id]["failed"] += n
    for worker_id, n in conn.execute(
        select(Trial.worker_id, func.count())
        .where(
            Trial.worker_id.in_(ids),
            Trial.state == TrialState.leased,
            Trial.lease_expires_at > now,
        )
        .group_by(Trial.worker_id)
    ).all():
        tally[worker_id]["active"] = n
    return [
        WorkerOut(
            id=r.id,
            name=r.name,
            host=r.host,
            device=r.device,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            leases=r.leases,
            trials_leased=r.trials_leased,
            active=tally[r.id]["active"],
            complete=tally[r.id]["complete"],
            failed=tally[r.id]["failed"],
        )
        for r in rows
    ]
