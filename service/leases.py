"""Leases: handing trials to workers, keeping them alive, and taking their reports.

A lease gives one worker up to K trials of one batch key (same task and fidelity) under
one random token, until an expiry that heartbeats push back: queued trials first, then
new points from tuner-driven studies with room for proposals in flight (`service.tuning`),
filled across studies. Only trials the worker can run: of studies whose task and optimizer
it advertised, or of the one study it asked for (a user's own loop); every lease names
what else it should probe (`service.repositories.capabilities`). Taking trials is atomic: on
PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` (concurrent leasers skip each other's
rows), on SQLite one guarded ``UPDATE …
WHERE state = 'queued'`` inside a ``BEGIN IMMEDIATE`` transaction; tuners are asked in the
same transaction. Reports (result, failure) must present the token of a live lease — one
guarded UPDATE checks state, token and expiry at once (tokens are 192 random bits) —
anything else is a `Conflict` (409) and changes nothing, so no result is counted twice.
A lease's expiry counts from when it commits, not from when the request came: a wait for
the write lock or a slow tuner ask never hands out a lease that is already running out.
Expired leases are reaped by lease calls (at most every `REAP_INTERVAL` seconds per API
process): the trial goes back to the queue, or fails after `max_attempts` leases.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Row, bindparam, case, func, or_, select, update
from sqlalchemy.orm import aliased

from service import lifecycle, tuning
from service.db import Database, for_update
from service.errors import Conflict, NotFound, ServiceError
from service.models import (
    PENDING_STATES,
    SEED_COLUMNS,
    Study,
    StudyState,
    Trial,
    TrialState,
    Worker,
    utcnow,
)
from service.repositories import capabilities, studies, workers
from service.settings import Settings
from studies.protocol import (
    Heartbeat,
    HeartbeatAck,
    LeasedTrial,
    LeaseRequest,
    LeaseResponse,
    TrialAck,
    TrialFailure,
    TrialResult,
)

#: Studies whose tuner one lease call may ask (those with room for proposals in flight).
TUNER_STUDIES_PER_CALL = 8
#: Seconds between two looks for expired leases (per API process).
REAP_INTERVAL = 0.5
#: A lease that took longer than this (locks, tuner asks) has its expiry set again just
#: before it commits, so that it counts from the commit.
RESTAMP_SECONDS = 0.05
_RETURNED = (Trial.id, Trial.study_id, Trial.number, Trial.alpha, Trial.eps, Trial.batch_key)

# The hot statements are built once, with bind parameters (building them costs more than
# running them on SQLite).
_NOW = bindparam("now")
_LEASE_VALUES = dict(
    state=TrialState.leased,
    lease_token=bindparam("token"),
    worker_id=bindparam("worker"),
    lease_expires_at=bindparam("expires"),
    leased_at=_NOW,
    heartbeat_at=_NOW,
    attempts=Trial.attempts + 1,
    progress_done=None,
    progress_total=None,
)


@dataclass(frozen=True)
class _Only:
    """Which restrictions of a lease request apply: to its advertised tasks, its advertised
    optimizers, one study, all but the studies it skips (each a bound parameter of the
    statements built for it)."""

    tasks: bool = False
    optimizers: bool = False
    study: bool = False
    skip: bool = False

    @staticmethod
    def of(request: LeaseRequest) -> _Only:
        return _Only(
            request.tasks is not None,
            request.optimizers is not None,
            bool(request.study_id),
            bool(request.skip_studies),
        )

    def params(self, request: LeaseRequest) -> dict[str, Any]:
        """The bound values of these restrictions."""
        out: dict[str, Any] = {}
        if self.tasks:
            out["tasks"] = list(request.tasks or ())
        if self.optimizers:
            out["optimizers"] = list(request.optimizers or ())
        if self.study:
            out["study"] = request.study_id
        if self.skip:
            out["skip"] = list(request.skip_studies)
        return out

    def clauses(self, study: Any) -> list[Any]:
        """WHERE clauses on `study` (a Study table or alias)."""
        out = []
        if self.tasks:
            out.append(study.task.in_(bindparam("tasks", expanding=True)))
        if self.optimizers:
            out.append(study.optimizer.in_(bindparam("optimizers", expanding=True)))
        if self.study:
            out.append(study.id == bindparam("study"))
        if self.skip:
            out.append(study.id.not_in(bindparam("skip", expanding=True)))
        return out


@cache
def _sqlite_take(only: _Only) -> Any:
    """One guarded UPDATE: the oldest runnable trial's batch key, then up to k of that key."""
    first, first_study = aliased(Trial), aliased(Study)
    pick, pick_study = aliased(Trial), aliased(Study)
    key = (
        select(first.batch_key)
        .join(first_study, first_study.id == first.study_id)
        .where(
            first.state == TrialState.queued,
            first_study.state == StudyState.running,
            *only.clauses(first_study),
        )
        .order_by(first.id)
        .limit(1)
        .scalar_subquery()
    )
    ids = (
        select(pick.id)
        .join(pick_study, pick_study.id == pick.study_id)
        .where(
            pick.state == TrialState.queued,
            pick_study.state == StudyState.running,
            pick.batch_key == key,
            *only.clauses(pick_study),
        )
        .order_by(pick.id)
        .limit(bindparam("k"))
    )
    return (
        update(Trial)
        .where(Trial.state == TrialState.queued, Trial.id.in_(ids))
        .values(**_LEASE_VALUES)
        .returning(*_RETURNED)
    )


_RUNNABLE = (Trial.state == TrialState.queued, Study.state == StudyState.running)


@cache
def _pg_first(only: _Only) -> Any:
    return (
        select(Trial.id, Trial.batch_key)
        .join(Study, Study.id == Trial.study_id)
        .where(*_RUNNABLE, *only.clauses(Study))
        .order_by(Trial.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=Trial)
    )


@cache
def _pg_more(only: _Only) -> Any:
    return (
        select(Trial.id)
        .join(Study, Study.id == Trial.study_id)
        .where(
            *_RUNNABLE,
            *only.clauses(Study),
            Trial.batch_key == bindparam("key"),
            Trial.id != bindparam("first"),
        )
        .order_by(Trial.id)
        .limit(bindparam("k"))
        .with_for_update(skip_locked=True, of=Trial)
    )


_LEASE_IDS = (
    update(Trial)
    .where(Trial.id.in_(bindparam("ids", expanding=True)), Trial.state == TrialState.queued)
    .values(**_LEASE_VALUES)
    .returning(*_RETURNED)
)
_EXPIRED = (
    select(Trial.id, Trial.attempts, Trial.study_id)
    .where(Trial.state == TrialState.leased, Trial.lease_expires_at < _NOW)
    .with_for_update(skip_locked=True)
)


def _take_queued_sqlite(
    conn: Connection, k: int, params: dict[str, Any], only: _Only, bound: dict[str, Any]
) -> list[Row]:
    return list(conn.execute(_sqlite_take(only), {**params, **bound, "k": k}).all())


def _take_queued_postgres(
    conn: Connection, k: int, params: dict[str, Any], only: _Only, bound: dict[str, Any]
) -> list[Row]:
    """Lock the oldest unlocked runnable trial, then up to k − 1 more of its batch key."""
    first = conn.execute(_pg_first(only), bound).first()
    if first is None:
        return []
    ids = [first.id]
    if k > 1:
        more = {**bound, "key": first.batch_key, "first": first.id, "k": k - 1}
        ids += conn.execute(_pg_more(only), more).scalars().all()
    return _lease_ids(conn, ids, params)


def _lease_ids(conn: Connection, ids: list[int], params: dict[str, Any]) -> list[Row]:
    return list(conn.execute(_LEASE_IDS, {**params, "ids": ids}).all())


_IN_FLIGHT = (
    select(func.count())
    .select_from(Trial)
    .where(Trial.study_id == Study.id, Trial.state.in_(PENDING_STATES))
    .correlate(Study)
    .scalar_subquery()
)
_ASKABLE = (
    Study.state == StudyState.running,
    Study.tuner != "grid",
    Study.n_trained < Study.budget,
    Study.stop_reason.is_(None),
    or_(Study.max_in_flight.is_(None), Study.max_in_flight > _IN_FLIGHT),
)


def _take_new(
    conn: Connection,
    k: int,
    params: dict[str, Any],
    now: datetime,
    key: str | None,
    request: LeaseRequest,
) -> list[Row]:
    """Ask tuner-driven studies this worker can run, with room in flight (least recently
    asked first), for new points of one batch key (`key`, or the first study's), filling
    the lease across them."""
    only = _Only.of(request)
    query = select(Study).where(*_ASKABLE, *only.clauses(Study))
    if key is not None:
        query = query.where(Study.batch_key == key)
    query = query.order_by(Study.updated_at, Study.id).limit(TUNER_STUDIES_PER_CALL)
    query = for_update(query, conn, skip_locked=True, of=Study)
    fresh: list[int] = []
    for study in conn.execute(query, only.params(request)).all():
        if key is not None and study.batch_key != key:
            continue
        outcome = tuning.ask(conn, study, k - len(fresh), now)
        if outcome.fresh:
            key = study.batch_key
            fresh += outcome.fresh
        elif outcome.exhausted:
            lifecycle.settle(conn, study.id, now)
        if len(fresh) >= k:
            break
    return _lease_ids(conn, fresh, params) if fresh else []


def reap_expired(conn: Connection, now: datetime, max_attempts: int) -> int:
    """Return trials with expired leases to the queue (failed after `max_attempts`)."""
    rows = conn.execute(_EXPIRED, {"now": now}).all()
    if not rows:
        return 0
    retry = [r.id for r in rows if r.attempts < max_attempts]
    released = dict(
        lease_token=None, lease_expires_at=None, progress_done=None, progress_total=None
    )
    if retry:
        conn.execute(
            update(Trial)
            .where(Trial.id.in_(retry), Trial.state == TrialState.leased)
            .values(state=TrialState.queued, error="lease expired", **released)
        )
    for row in rows:
        if row.attempts < max_attempts:
            continue
        error = f"lease expired on each of {row.attempts} attempts"
        conn.execute(
            update(Trial)
            .where(Trial.id == row.id, Trial.state == TrialState.leased)
            .values(state=TrialState.failed, error=error, finished_at=now, **released)
        )
        lifecycle.mirror(conn, row.id, now, state=TrialState.failed, error=error)
    for study_id in {r.study_id for r in rows if r.attempts >= max_attempts}:
        lifecycle.settle(conn, study_id, now)
    return len(rows)


def extend_leases(conn: Connection, now: datetime, seconds: float) -> int:
    """Give every live lease `seconds` more (after a server restart: workers could not beat)."""
    expires = now + timedelta(seconds=seconds)
    result = conn.execute(
        update(Trial)
        .where(Trial.state == TrialState.leased, Trial.lease_expires_at < expires)
        .values(lease_expires_at=expires)
    )
    return result.rowcount


_RESTAMP = (
    update(Trial)
    .where(Trial.id.in_(bindparam("ids", expanding=True)), Trial.lease_token == bindparam("token"))
    .values(lease_expires_at=bindparam("expires"))
)


def _restamp(conn: Connection, rows: list[Row], params: dict[str, Any], seconds: float) -> datetime:
    """The lease's expiry, set again from now when taking its trials took a while."""
    later = utcnow()
    if (later - params["now"]).total_seconds() <= RESTAMP_SECONDS:
        return params["expires"]
    expires = later + timedelta(seconds=seconds)
    ids = [r.id for r in rows]
    conn.execute(_RESTAMP, {"ids": ids, "token": params["token"], "expires": expires})
    return expires


def lease(db: Database, settings: Settings, request: LeaseRequest) -> LeaseResponse:
    """Lease up to `request.max_trials` trials of one task and fidelity to a worker."""
    k = min(request.max_trials, settings.max_lease_trials)
    token = secrets.token_urlsafe(24)
    empty = LeaseResponse(
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        retry_after=settings.idle_retry_seconds,
    )
    cache = db.cache
    with db.write() as conn:
        now = utcnow()  # after SQLite's BEGIN IMMEDIATE: the lock wait does not count
        expires = now + timedelta(seconds=settings.lease_seconds)
        params = {"token": token, "worker": request.worker_id, "now": now, "expires": expires}
        reaping = time.monotonic() >= cache.next_reap  # marked done once committed
        if reaping:
            reap_expired(conn, now, settings.max_attempts)
        only = _Only.of(request)
        take = _take_queued_postgres if db.dialect == "postgresql" else _take_queued_sqlite
        rows = take(conn, k, params, only, only.params(request))
        if len(rows) < k:
            db.leave_loop()  # tuners are asked off the event loop
            key = rows[0].batch_key if rows else None
            rows += _take_new(conn, k - len(rows), params, now, key, request)
        workers.touch(db, conn, request, now, len(rows))
        probe = capabilities.to_probe(db, conn, request)
        if reaping:
            cache.next_reap = time.monotonic() + REAP_INTERVAL
        if not rows:
            return empty.model_copy(update={"probe": probe})
        specs = {sid: studies.cached_spec(db, conn, sid) for sid in {r.study_id for r in rows}}
        expires = _restamp(conn, rows, params, settings.lease_seconds)
    rows.sort(key=lambda r: r.id)
    first = specs[rows[0].study_id]
    return LeaseResponse(
        token=token,
        expires_at=expires,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        task=first.task,
        fidelity=first.fidelity,
        trials=[
            LeasedTrial(
                trial_id=r.id,
                study_id=r.study_id,
                number=r.number,
                alpha=r.alpha,
                eps=r.eps,
                optimizer=specs[r.study_id].optimizer,
            )
            for r in rows
        ],
        probe=probe,
    )


_DIAGNOSE = select(Trial.state, Trial.lease_token, Trial.lease_expires_at).where(
    Trial.id == bindparam("tid")
)
_LIVE = (
    Trial.state == TrialState.leased,
    Trial.lease_token == bindparam("token"),
    Trial.lease_expires_at > _NOW,
)
_BEAT = (
    update(Trial)
    .where(*_LIVE)
    .values(
        lease_expires_at=bindparam("expires"),
        heartbeat_at=_NOW,
        progress_done=bindparam("done"),
        progress_total=bindparam("total"),
    )
    .returning(Trial.id, Trial.worker_id)
)
_SEEN = update(Worker).where(Worker.id == bindparam("worker")).values(last_seen=_NOW)
_FINISH = (
    update(Trial)
    .where(Trial.id == bindparam("tid"), *_LIVE)
    .values(
        state=bindparam("state"),
        value=bindparam("value"),
        test_value=bindparam("test_value"),
        curve=bindparam("curve"),
        diverged=bindparam("diverged"),
        seed_values=bindparam("seed_values"),
        seed_test_values=bindparam("seed_test_values"),
        seed_diverged=bindparam("seed_diverged"),
        chance=bindparam("chance"),
        seed_diagnostics=bindparam("seed_diagnostics"),
        seconds=bindparam("seconds"),
        numerics=bindparam("numerics"),
        lease_token=None,
        lease_expires_at=None,
        finished_at=_NOW,
        error=None,
        progress_done=Trial.progress_total,
    )
    .returning(Trial.study_id)
)
_REQUEUE = (
    update(Trial)
    .where(Trial.id == bindparam("tid"), *_LIVE)
    .values(
        state=case(
            (Trial.attempts >= bindparam("max_attempts"), TrialState.failed.value),
            else_=TrialState.queued.value,
        ),
        finished_at=case((Trial.attempts >= bindparam("max_attempts"), _NOW), else_=None),
        attempts=Trial.attempts + bindparam("change"),
        error=bindparam("error"),
        lease_token=None,
        lease_expires_at=None,
        progress_done=None,
        progress_total=None,
    )
    .returning(Trial.study_id, Trial.state)
)


def _refuse(conn: Connection, trial_id: int, now: datetime) -> ServiceError:
    """Why a report on `trial_id` missed its live lease: `NotFound` or `Conflict`."""
    row = conn.execute(_DIAGNOSE, {"tid": trial_id}).first()
    if row is None:
        return NotFound(f"trial {trial_id} does not exist")
    if row.state == TrialState.leased and row.lease_expires_at <= now:
        return Conflict(
            f"the lease on trial {trial_id} expired at {row.lease_expires_at.isoformat()}; "
            "the trial goes back to the queue, drop this report"
        )
    return Conflict(
        f"trial {trial_id} is not leased under this token (it is {row.state}): the lease "
        "expired, was released, or this trial was already reported; drop this report"
    )


def heartbeat(db: Database, settings: Settings, trial_id: int, beat: Heartbeat) -> HeartbeatAck:
    """Extend the lease holding `trial_id` (all its trials, from the commit); record progress."""
    now = utcnow()
    params = {"token": beat.token, "now": now, "done": beat.done, "total": beat.total}
    with db.write() as conn:
        params["expires"] = expires = utcnow() + timedelta(seconds=settings.lease_seconds)
        rows = conn.execute(_BEAT, params).all()
        if trial_id not in {r.id for r in rows}:
            raise _refuse(conn, trial_id, now)  # rolls the extension back
        if rows[0].worker_id is not None:
            conn.execute(_SEEN, {"worker": rows[0].worker_id, "now": now})
    return HeartbeatAck(expires_at=expires, trials=len(rows))


def _seeds(result: TrialResult) -> dict[str, Any]:
    """The per-seed columns of a result (None from workers that send one value)."""
    return {name: getattr(result, name) for name in SEED_COLUMNS}


def _diagnostics(result: TrialResult) -> list[list[dict[str, Any]]] | None:
    """Each seed's diagnostics records as JSON (None when the worker sent none)."""
    seeds = result.seed_diagnostics
    return None if seeds is None else [[r.model_dump() for r in seed] for seed in seeds]


#: Results of one batch that may be recorded in the event loop (more go to a thread).
IN_LOOP_RESULTS = 8


def _state(result: TrialResult) -> TrialState:
    """The state a result leaves its trial in (a diverged run is a result)."""
    return TrialState.diverged if result.diverged else TrialState.complete


@dataclass(frozen=True)
class _Recorded:
    """A result just recorded: its trial, study and value."""

    trial_id: int
    study_id: int
    value: float


def _finish(
    db: Database, conn: Connection, trial_id: int, result: TrialResult, now: datetime
) -> int:
    """Record `result` under its live lease (and on the repeat asks waiting for it); its
    study, or `NotFound` / `Conflict` with nothing changed."""
    state = _state(result)
    params = {
        "tid": trial_id,
        "token": result.token,
        "state": state,
        "value": result.value,
        "test_value": result.test_value,
        "curve": result.curve,
        "diverged": result.diverged,
        **_seeds(result),
        "seed_diagnostics": _diagnostics(result),
        "seconds": result.seconds,
        "numerics": result.numerics,
        "now": now,
    }
    study_id = conn.execute(_FINISH, params).scalar()
    if study_id is None:
        raise _refuse(conn, trial_id, now)
    if studies.cached_spec(db, conn, study_id).tuner.name != "grid":  # only tuners ask twice
        lifecycle.mirror(
            conn,
            trial_id,
            now,
            state=state,
            value=result.value,
            test_value=result.test_value,
            diverged=result.diverged,
            seeds=_seeds(result),
        )
    return study_id


def _settle(db: Database, conn: Connection, recorded: list[_Recorded], now: datetime) -> None:
    """Per study of `recorded`, in id order (concurrent batches lock studies alike): its
    best value, then whether it is finished."""
    best = db.cache.best  # never below the stored best: a hint
    lowest: dict[int, _Recorded] = {}
    for r in recorded:
        if r.study_id not in lowest or r.value < lowest[r.study_id].value:
            lowest[r.study_id] = r
    for study_id in sorted(lowest):
        r = lowest[study_id]
        if r.value < best.get(study_id, math.inf):
            lifecycle.record_best(conn, study_id, r.trial_id, r.value)
        lifecycle.settle(conn, study_id, now)


def _remember_best(db: Database, recorded: list[_Recorded]) -> None:
    """Keep the committed values as the studies' best hints."""
    best = db.cache.best
    for r in recorded:
        best[r.study_id] = min(r.value, best.get(r.study_id, math.inf))


def report_result(db: Database, trial_id: int, result: TrialResult) -> TrialAck:
    """Record a finished training once; a second or late report is a `Conflict`."""
    now = utcnow()
    with db.write() as conn:
        recorded = [_Recorded(trial_id, _finish(db, conn, trial_id, result, now), result.value)]
        _settle(db, conn, recorded, now)
    _remember_best(db, recorded)
    return TrialAck(trial_id=trial_id, state=_state(result))


def report_results(
    db: Database, items: Sequence[tuple[int, TrialResult]]
) -> list[TrialAck | NotFound | Conflict]:
    """Record many results in one transaction, each as `report_result` would; per item its
    ack, or the refusal that left it unrecorded (the others are recorded all the same)."""
    if len(items) > IN_LOOP_RESULTS:
        db.leave_loop()
    now = utcnow()
    answers: list[TrialAck | NotFound | Conflict] = []
    recorded: list[_Recorded] = []
    with db.write() as conn:
        for trial_id, result in items:
            try:
                study_id = _finish(db, conn, trial_id, result, now)
            except (NotFound, Conflict) as refused:
                answers.append(refused)
                continue
            recorded.append(_Recorded(trial_id, study_id, result.value))
            answers.append(TrialAck(trial_id=trial_id, state=_state(result)))
        _settle(db, conn, recorded, now)
    _remember_best(db, recorded)
    return answers


def report_failure(
    db: Database, settings: Settings, trial_id: int, failure: TrialFailure
) -> TrialAck:
    """Return a trial to the queue (a release costs no attempt), or fail it for good."""
    now = utcnow()
    params = {
        "tid": trial_id,
        "token": failure.token,
        "now": now,
        "error": failure.error or None,
        # a release gives the attempt back and never fails the trial
        "change": -1 if failure.release else 0,
        "max_attempts": 2**31 - 1 if failure.release else settings.max_attempts,
    }
    with db.write() as conn:
        row = conn.execute(_REQUEUE, params).first()
        if row is None:
            raise _refuse(conn, trial_id, now)
        if row.state == TrialState.failed:
            lifecycle.mirror(conn, trial_id, now, state=row.state, error=failure.error or None)
            lifecycle.settle(conn, row.study_id, now)
    return TrialAck(trial_id=trial_id, state=row.state)
