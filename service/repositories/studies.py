"""Studies: create (queueing a grid), read with progress, pause / resume / cancel, delete."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from service import lifecycle
from service.db import Database
from service.errors import Conflict, Invalid, NotFound
from service.models import Study, StudyState, Trial, TrialState, utcnow
from service.repositories import capabilities
from service.tuning import in_flight
from studies.schemas import BestTrial, StudyOut
from studies.specs import StudySpec, unknown_names

FINISHED_TRIAL_STATES = (TrialState.complete, TrialState.diverged, TrialState.failed)
log = logging.getLogger("avatune.studies")


def batch_key(spec: StudySpec) -> str:
    """Trials with equal keys (task and fidelity) can be trained as one batch.

    Diagnostics off leave the key as it was before the field existed (stored keys match).
    """
    fidelity = spec.fidelity.model_dump()
    if fidelity.get("diagnostics_every") is None:
        fidelity.pop("diagnostics_every", None)
    blob = json.dumps({"task": spec.task.model_dump(), "fidelity": fidelity}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def create_study(
    conn: Connection, spec: StudySpec, now: datetime, experiment_id: int | None = None
) -> int:
    """Insert a study (its seed fixed now) and, for the grid tuner, queue its points.

    ValueError (a 422) when a plain task or optimizer name names nothing installed here.
    """
    issues = unknown_names(spec)
    if issues:
        raise ValueError("; ".join(str(issue) for issue in issues))
    seed = spec.tuner.seed if spec.tuner.seed is not None else secrets.randbelow(2**31 - 1)
    spec = spec.model_copy(update={"tuner": spec.tuner.model_copy(update={"seed": seed})})
    limit = in_flight(spec, seed)  # a bad tuner config is the user's to fix: ValueError → 422
    assert spec.budget is not None
    key = batch_key(spec)
    study_id = conn.execute(
        insert(Study)
        .values(
            name=spec.name,
            state=StudyState.running,
            task=spec.task.name,
            optimizer=spec.optimizer.name,
            tuner=spec.tuner.name,
            spec=spec.model_dump(mode="json"),
            batch_key=key,
            budget=spec.budget,
            seed=seed,
            n_trained=0,
            n_asks=0,
            max_in_flight=limit.limit,
            experiment_id=experiment_id,
            created_at=now,
            updated_at=now,
        )
        .returning(Study.id)
    ).scalar_one()
    if spec.tuner.name == "grid":
        _queue_grid(conn, study_id, spec, key, seed, now)
    log.info(
        "study %d created: %r, %s on %s, %s tuner, budget %d",
        study_id,
        spec.name,
        spec.optimizer.name,
        spec.task.name,
        spec.tuner.name,
        spec.budget,
        extra={
            "study": study_id,
            "experiment": experiment_id,
            "optimizer": spec.optimizer.name,
            "task": spec.task.name,
            "tuner": spec.tuner.name,
            "budget": spec.budget,
        },
    )
    return study_id


def _queue_grid(
    conn: Connection, study_id: int, spec: StudySpec, key: str, seed: int, now: datetime
) -> None:
    """Queue the grid's points in a seeded random order (what Optuna's GridSampler hands
    out), the first `budget` of them: the grid tuner needs no sampler on the server."""
    alphas, epsilons = spec.space.grid_axes()
    columns = range(len(epsilons)) if spec.searches_eps else range(1)
    points = [(i, j) for i in range(len(alphas)) for j in columns]
    random.Random(seed).shuffle(points)
    names = spec.space.param_names()[: 2 if spec.searches_eps else 1]
    assert spec.budget is not None
    rows = [
        dict(
            study_id=study_id,
            number=n,
            training=n,
            state=TrialState.queued,
            alpha=alphas[i],
            eps=epsilons[j],
            i_alpha=i,
            j_eps=j,
            params=dict(zip(names, (i, j), strict=False)),
            tuner_attrs=None,
            batch_key=key,
            attempts=0,
            diverged=False,
            created_at=now,
        )
        for n, (i, j) in enumerate(points[: spec.budget])
    ]
    conn.execute(insert(Trial), rows)
    conn.execute(
        update(Study).where(Study.id == study_id).values(n_trained=len(rows), n_asks=len(rows))
    )
    if conn.dialect.name == "postgresql":
        # Fresh statistics, or the planner may sort every queued trial on each lease.
        conn.exec_driver_sql("ANALYZE trials")


def cached_spec(db: Database, conn: Connection, study_id: int) -> StudySpec:
    """A study's spec, from the per-process cache (specs never change, ids are never reused)."""
    spec = db.specs.get(study_id)
    if spec is None:
        raw = conn.execute(select(Study.spec).where(Study.id == study_id)).scalar_one()
        spec = db.specs[study_id] = StudySpec.model_validate(raw)
    return spec


def _study_row(conn: Connection, study_id: int) -> Row:
    row = conn.execute(select(Study).where(Study.id == study_id)).first()
    if row is None:
        raise NotFound(f"study {study_id} does not exist")
    return row


def _outs(conn: Connection, rows: list[Row]) -> list[StudyOut]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    repeats: dict[int, int] = defaultdict(int)
    grouped = conn.execute(
        select(Trial.study_id, Trial.state, Trial.source_trial_id.is_(None), func.count())
        .where(Trial.study_id.in_(ids))
        .group_by(Trial.study_id, Trial.state, Trial.source_trial_id.is_(None))
    ).all()
    for study_id, state, training, n in grouped:
        if training:
            counts[study_id][state] = n
        else:
            repeats[study_id] += n
    best_ids = [r.best_trial_id for r in rows if r.best_trial_id is not None]
    points = (
        {
            t.id: t
            for t in conn.execute(
                select(Trial.id, Trial.alpha, Trial.eps).where(Trial.id.in_(best_ids))
            ).all()
        }
        if best_ids
        else {}
    )
    reasons = _waiting(conn, rows, counts)
    outs = []
    for r in rows:
        point = points.get(r.best_trial_id)
        best = None
        if point is not None and r.best_value is not None:
            best = BestTrial(
                trial_id=r.best_trial_id, value=r.best_value, alpha=point.alpha, eps=point.eps
            )
        done = sum(counts[r.id].get(state, 0) for state in FINISHED_TRIAL_STATES)
        flying = sum(counts[r.id].get(state, 0) for state in (TrialState.queued, TrialState.leased))
        outs.append(
            StudyOut(
                id=r.id,
                name=r.name,
                state=r.state,
                task=r.task,
                optimizer=r.optimizer,
                tuner=r.tuner,
                budget=r.budget,
                trainings_budget=r.budget,
                trainings_proposed=r.n_trained,
                trainings_done=done,
                trainings_in_flight=flying,
                repeats=repeats[r.id],
                in_flight_limit=r.max_in_flight,
                progress=min(1.0, done / r.budget) if r.budget else 1.0,
                counts=counts[r.id],
                best=best,
                stop_reason=r.stop_reason,
                waiting=reasons.get(r.id),
                experiment_id=r.experiment_id,
                created_at=r.created_at,
                updated_at=r.updated_at,
                finished_at=r.finished_at,
                spec=StudySpec.model_validate(r.spec),
            )
        )
    return outs


def _waiting(
    conn: Connection, rows: list[Row], counts: dict[int, dict[str, int]]
) -> dict[int, str]:
    """Why each running study with trainings to hand out, none of them leased, waits."""
    needs = [
        capabilities.Need(r.id, r.task, r.optimizer)
        for r in rows
        if r.state == StudyState.running
        and not counts[r.id].get(TrialState.leased)
        and (
            counts[r.id].get(TrialState.queued)
            or (r.tuner != "grid" and r.n_trained < r.budget and r.stop_reason is None)
        )
    ]
    if not needs:
        return {}
    live = capabilities.live_workers(conn, utcnow())
    reasons = {need.study_id: capabilities.waiting_reason(need, live) for need in needs}
    return {study_id: reason for study_id, reason in reasons.items() if reason is not None}


def get_study(conn: Connection, study_id: int) -> StudyOut:
    """One study with its progress; `NotFound` when it does not exist."""
    return _outs(conn, [_study_row(conn, study_id)])[0]


def list_studies(
    conn: Connection,
    *,
    state: str | None = None,
    experiment_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[StudyOut]:
    """Studies, newest first, with progress and best values."""
    query = select(Study).order_by(Study.id.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(Study.state == state)
    if experiment_id is not None:
        query = query.where(Study.experiment_id == experiment_id).order_by(None).order_by(Study.id)
    return _outs(conn, list(conn.execute(query).all()))


_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": ((StudyState.running,), StudyState.paused),
    "resume": ((StudyState.paused,), StudyState.running),
    "cancel": ((StudyState.running, StudyState.paused), StudyState.cancelled),
}


_DONE = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


def change_state(conn: Connection, study_id: int, action: str, now: datetime) -> None:
    """Pause, resume or cancel a study; `Conflict` when its state does not allow it.

    Cancelling drops queued and waiting trials; leased ones may still report.
    """
    if action not in _TRANSITIONS:
        raise Invalid(f"unknown action {action!r}; use pause, resume or cancel")
    allowed, target = _TRANSITIONS[action]
    row = _study_row(conn, study_id)
    if row.state not in allowed:
        raise Conflict(f"cannot {action} study {study_id}: it is {row.state}")
    values: dict[str, Any] = dict(state=target, updated_at=now)
    if target == StudyState.cancelled:
        values["finished_at"] = now
    conn.execute(update(Study).where(Study.id == study_id).values(**values))
    log.info(
        "study %d %s", study_id, _DONE[action], extra={"study": study_id, "state": str(target)}
    )
    if target == StudyState.cancelled:
        conn.execute(
            update(Trial)
            .where(
                Trial.study_id == study_id,
                Trial.state.in_((TrialState.queued, TrialState.waiting)),
            )
            .values(state=TrialState.cancelled, finished_at=now)
        )
        if row.experiment_id is not None:
            lifecycle.settle_experiment(conn, row.experiment_id)


def delete_study(conn: Connection, study_id: int, *, force: bool = False) -> None:
    """Delete a study and its trials (an experiment's studies go with their experiment)."""
    row = _study_row(conn, study_id)
    if row.experiment_id is not None and not force:
        raise Conflict(
            f"study {study_id} belongs to experiment {row.experiment_id}; delete the experiment"
        )
    conn.execute(update(Trial).where(Trial.study_id == study_id).values(source_trial_id=None))
    conn.execute(delete(Trial).where(Trial.study_id == study_id))
    conn.execute(delete(Study).where(Study.id == study_id))
    if not force:
        log.info("study %d deleted", study_id, extra={"study": study_id})
