"""The tuner of a study, run on the server: rebuilt from the database on every ask.

Tuner state never lives only in process memory. An ask reads the study's trials as stored
(params, states, values and the samplers' system attrs, where GLD and CMA-ES keep their
state), hands them to the pure policy `studies.tuners.propose.propose` (which rebuilds the
Optuna study and sampler from the study's seed and the number of trials so far) and
writes the proposals it returns. A restarted server, or a second API process, therefore
continues the same run. Asks for one study are serialised by the caller's lock on the
study row (PostgreSQL ``SELECT … FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already
serialises writers).

A proposal of a point the study already evaluated becomes a repeat that copies the stored
result (no training); one of a point still being trained becomes a `waiting` repeat that
takes the original's result when it arrives (or, when the original finished meanwhile, is
written with its result at once). Only new points are trainings (numbered in
`Trial.training`).

Feedback by design: a study never has more unfinished proposals (queued, leased, waiting)
than its tuner's in-flight limit (studies.tuners.inflight), and GLD begins no iteration
while the last one is unfinished; the replay simulates the same limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from service.db import for_update
from service.models import PENDING_STATES, SEED_COLUMNS, VALUED_STATES, Study, Trial, TrialState
from studies.specs import StudySpec
from studies.tuners.domain import Domain
from studies.tuners.inflight import InFlightLimit, in_flight_limit
from studies.tuners.propose import (
    ASK_CAP_FACTOR,
    ASKS_PER_CALL,
    Ask,
    Kind,
    Proposal,
    Record,
    Status,
    ask_cap,
    distributions,
    make_tuner,
    propose,
    sampler_seed,
)

STOPPED = "the tuner stopped proposing new points"
_seed = sampler_seed  # the name the live-vs-replay test knows

__all__ = [
    "ASKS_PER_CALL",
    "ASK_CAP_FACTOR",
    "STOPPED",
    "AskOutcome",
    "ask",
    "ask_cap",
    "distributions",
    "in_flight",
    "make_tuner",
    "records",
]


def in_flight(spec: StudySpec | dict[str, Any], seed: int) -> InFlightLimit:
    """The study's limit on unfinished proposals (none for the grid tuner: all are queued)."""
    spec = StudySpec.model_validate(spec)
    if spec.tuner.name == "grid":
        return InFlightLimit(None)
    domain = Domain.from_distributions(distributions(spec))
    return in_flight_limit(make_tuner(spec, seed), domain, spec.tuner.parallelism)


@dataclass
class AskOutcome:
    """What one round of asks produced."""

    fresh: list[int]
    asks: int
    exhausted: bool


_HISTORY = (
    select(
        Trial.id,
        Trial.state,
        Trial.params,
        Trial.tuner_attrs,
        Trial.value,
        Trial.source_trial_id,
    )
    .where(Trial.study_id == bindparam("sid"))
    .order_by(Trial.number)
)


def _status(state: str) -> Status:
    if state in VALUED_STATES:
        return Status.valued
    return Status.pending if state in PENDING_STATES else Status.failed


def records(conn: Connection, study_id: int) -> list[Record]:
    """The study's trials as the tuner sees them, in proposal order."""
    return [
        Record(
            id=row.id,
            status=_status(row.state),
            params=row.params,
            value=row.value,
            attrs=row.tuner_attrs,
            repeat=row.source_trial_id is not None,
        )
        for row in conn.execute(_HISTORY, {"sid": study_id}).all()
    ]


def ask(conn: Connection, study: Any, n: int, now: datetime) -> AskOutcome:
    """Ask the tuner of `study` (a locked studies row) for up to `n` points needing training,
    within its in-flight limit.

    Inserts the new trials (queued trainings, repeats, waiting repeats) and returns the
    queued ones' ids.
    """
    spec = StudySpec.model_validate(study.spec)
    history = records(conn, study.id)
    request = Ask(
        n=n, budget_left=study.budget - study.n_trained, asks_left=ask_cap(spec) - study.n_asks
    )
    proposals = propose(spec, study.seed, history, request).items
    fresh = _write(conn, study, len(history), proposals, now)
    asks = len(proposals)
    exhausted = not fresh and study.n_asks + asks >= ask_cap(spec)
    conn.execute(
        update(Study)
        .where(Study.id == study.id)
        .values(
            n_asks=Study.n_asks + asks,
            n_trained=Study.n_trained + len(fresh),
            updated_at=now,
            stop_reason=STOPPED if exhausted else Study.stop_reason,
        )
    )
    return AskOutcome(fresh, asks, exhausted)


def _write(
    conn: Connection, study: Any, number: int, proposals: list[Proposal], now: datetime
) -> list[int]:
    """Insert `proposals` as trials numbered from `number`; the new trainings' ids."""
    ids: list[int] = []  # each proposal's trial id
    fresh: list[int] = []
    for offset, proposal in enumerate(proposals):
        base = dict(
            study_id=study.id,
            number=number + offset,
            alpha=proposal.alpha,
            eps=proposal.eps,
            i_alpha=proposal.i_alpha,
            j_eps=proposal.j_eps,
            params=proposal.params,
            tuner_attrs=proposal.attrs,
            batch_key=study.batch_key,
            created_at=now,
            attempts=0,
            diverged=False,
        )
        if proposal.kind == Kind.train:
            new = insert(Trial).values(
                **base, state=TrialState.queued, training=study.n_trained + len(fresh)
            )
            ids.append(conn.execute(new.returning(Trial.id)).scalar_one())
            fresh.append(ids[-1])
            continue
        if proposal.source_index is not None:  # an original of this same call: queued
            source = ids[proposal.source_index]
            values: dict[str, Any] = dict(state=TrialState.waiting)
        else:
            assert proposal.source_id is not None
            source = proposal.source_id
            values = _repeat(conn, source, proposal.kind, now)
        new = insert(Trial).values({**base, **values, "source_trial_id": source})
        ids.append(conn.execute(new.returning(Trial.id)).scalar_one())
    return fresh


_SEEDS = select(*(Trial.__table__.c[name] for name in SEED_COLUMNS)).where(
    Trial.id == bindparam("tid")
)
_RECHECK = select(
    Trial.state,
    Trial.value,
    Trial.test_value,
    Trial.diverged,
    Trial.error,
    *_SEEDS.selected_columns,
).where(Trial.id == bindparam("tid"))


def _repeat(conn: Connection, original: int, kind: Kind, now: datetime) -> dict[str, Any]:
    """A repeat's columns: the original's outcome when it has finished, else waiting."""
    if kind == Kind.wait:
        row = _recheck(conn, original)
        if row.state in PENDING_STATES:
            return dict(state=TrialState.waiting)
    else:
        row = conn.execute(_RECHECK, {"tid": original}).one()
    seeds = {name: getattr(row, name) for name in SEED_COLUMNS}
    error = None if row.state in VALUED_STATES else row.error
    return dict(
        **seeds,
        state=row.state,
        value=row.value,
        test_value=row.test_value,
        diverged=row.diverged,
        error=error,
        finished_at=now,
    )


def _recheck(conn: Connection, original: int) -> Row:
    """The original's current state, its row locked: a result committing concurrently then
    either shows here, or its mirroring of waiting trials runs after this transaction."""
    return conn.execute(for_update(_RECHECK, conn), {"tid": original}).one()
