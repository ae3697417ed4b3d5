"""Trials of a study: pages in number order, an export's pages, and every trial at once.

Trainings only by default: a repeat ask (answered from a training of the same point) is
counted on its training (`repeats`) and listed only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, exists, func, select

from service.errors import NotFound
from service.models import Study, Trial
from studies.schemas import DiagnosticsPage, TrainingDiagnostics, TrialOut, TrialPage

_COLUMNS = tuple(c for c in Trial.__table__.columns if c.name in TrialOut.model_fields)


def _out(row: Row, curves: bool, repeats: dict[int, int]) -> TrialOut:
    data = row._asdict()
    if not curves:
        data["curve"] = None
    return TrialOut.model_validate(data | {"repeats": repeats.get(row.id, 0)})


def _require_study(conn: Connection, study_id: int) -> None:
    if not conn.execute(select(exists().where(Study.id == study_id))).scalar():
        raise NotFound(f"study {study_id} does not exist")


def _repeats(conn: Connection, study_id: int, ids: Sequence[int]) -> dict[int, int]:
    """Repeat asks per training, for the trainings among `ids`."""
    if not ids:
        return {}
    rows = conn.execute(
        select(Trial.source_trial_id, func.count())
        .where(Trial.study_id == study_id, Trial.source_trial_id.in_(ids))
        .group_by(Trial.source_trial_id)
    ).all()
    return {source: n for source, n in rows}


def _select(conn: Connection, query: Any, study_id: int, curves: bool) -> list[TrialOut]:
    rows = conn.execute(query).all()
    repeats = _repeats(conn, study_id, [r.id for r in rows if r.source_trial_id is None])
    return [_out(row, curves, repeats) for row in rows]


def page(
    conn: Connection,
    study_id: int,
    *,
    states: Sequence[str] = (),
    after: int | None = None,
    limit: int = 500,
    curves: bool = False,
    repeats: bool = False,
) -> TrialPage:
    """Trials of a study with number > `after`, optionally in `states`, `limit` at most;
    trainings only unless `repeats`."""
    _require_study(conn, study_id)
    query = select(*_COLUMNS).where(Trial.study_id == study_id).order_by(Trial.number).limit(limit)
    if states:
        query = query.where(Trial.state.in_(states))
    if after is not None:
        query = query.where(Trial.number > after)
    if not repeats:
        query = query.where(Trial.source_trial_id.is_(None))
    trials = _select(conn, query, study_id, curves)
    next_after = trials[-1].number if len(trials) == limit else None
    return TrialPage(trials=trials, next_after=next_after)


def all_trials(
    conn: Connection, study_id: int, *, curves: bool = True, repeats: bool = False
) -> list[TrialOut]:
    """Every training of a study (and its repeats when `repeats`) in number order."""
    _require_study(conn, study_id)
    query = select(*_COLUMNS).where(Trial.study_id == study_id).order_by(Trial.number)
    if not repeats:
        query = query.where(Trial.source_trial_id.is_(None))
    return _select(conn, query, study_id, curves)


def last_number(conn: Connection, study_id: int) -> int:
    """The highest trial number of a study (-1 when it has none): where an export stops."""
    _require_study(conn, study_id)
    last = conn.execute(select(func.max(Trial.number)).where(Trial.study_id == study_id))
    value = last.scalar_one()
    return -1 if value is None else int(value)


def export_page(
    conn: Connection, study_id: int, *, after: int, upto: int, limit: int, curves: bool
) -> list[TrialOut]:
    """Trainings of a study with `after` < number <= `upto` in number order, `limit` at
    most: one page of an export (keyset on the (study_id, number) unique index)."""
    query = (
        select(*_COLUMNS)
        .where(
            Trial.study_id == study_id,
            Trial.number > after,
            Trial.number <= upto,
            Trial.source_trial_id.is_(None),
        )
        .order_by(Trial.number)
        .limit(limit)
    )
    return _select(conn, query, study_id, curves)


def repeat_asks_page(
    conn: Connection, study_id: int, *, after: int, upto: int, limit: int
) -> list[Row]:
    """Repeat asks of a study (number, source_trial_id, state) with `after` < number <=
    `upto` in number order, `limit` at most: one page of the JSON export's `repeats`."""
    query = (
        select(Trial.number, Trial.source_trial_id, Trial.state)
        .where(
            Trial.study_id == study_id,
            Trial.number > after,
            Trial.number <= upto,
            Trial.source_trial_id.is_not(None),
        )
        .order_by(Trial.number)
        .limit(limit)
    )
    return list(conn.execute(query).all())


_DIAGNOSED = (Trial.id, Trial.number, Trial.training, Trial.state, Trial.alpha, Trial.eps)


def diagnostics_page(
    conn: Connection, study_id: int, *, after: int | None = None, limit: int = 100
) -> DiagnosticsPage:
    """Trainings of a study that carry diagnostics, number > `after`, `limit` at most."""
    _require_study(conn, study_id)
    query = (
        select(*_DIAGNOSED, Trial.seed_diagnostics)
        .where(
            Trial.study_id == study_id,
            Trial.source_trial_id.is_(None),
            Trial.seed_diagnostics.is_not(None),
        )
        .order_by(Trial.number)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Trial.number > after)
    trainings = [
        TrainingDiagnostics(
            trial_id=row.id,
            number=row.number,
            training=row.training,
            state=row.state,
            alpha=row.alpha,
            eps=row.eps,
            seeds=row.seed_diagnostics,
        )
        for row in conn.execute(query)
    ]
    next_after = trainings[-1].number if len(trainings) == limit else None
    return DiagnosticsPage(trainings=trainings, next_after=next_after)
