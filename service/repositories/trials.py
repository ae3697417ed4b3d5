"""Trials of a study: pages in number order, and every trial for exports and grid tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Row, exists, select

from service.errors import NotFound
from service.models import Study, Trial
from service.schemas import TrialOut, TrialPage

_COLUMNS = tuple(c for c in Trial.__table__.columns if c.name in TrialOut.model_fields)


def _out(row: Row, curves: bool) -> TrialOut:
    data = row._asdict()
    if not curves:
        data["curve"] = None
    return TrialOut.model_validate(data)


def _require_study(conn: Connection, study_id: int) -> None:
    if not conn.execute(select(exists().where(Study.id == study_id))).scalar():
        raise NotFound(f"study {study_id} does not exist")


def page(
    conn: Connection,
    study_id: int,
    *,
    states: Sequence[str] = (),
    after: int | None = None,
    limit: int = 500,
    curves: bool = False,
) -> TrialPage:
    """Trials of a study with number > `after`, optionally in `states`, `limit` at most."""
    _require_study(conn, study_id)
    query = select(*_COLUMNS).where(Trial.study_id == study_id).order_by(Trial.number).limit(limit)
    if states:
        query = query.where(Trial.state.in_(states))
    if after is not None:
        query = query.where(Trial.number > after)
    trials = [_out(row, curves) for row in conn.execute(query).all()]
    next_after = trials[-1].number if len(trials) == limit else None
    return TrialPage(trials=trials, next_after=next_after)


def all_trials(conn: Connection, study_id: int, *, curves: bool = True) -> list[TrialOut]:
    """Every trial of a study in number order."""
    _require_study(conn, study_id)
    query = select(*_COLUMNS).where(Trial.study_id == study_id).order_by(Trial.number)
    return [_out(row, curves) for row in conn.execute(query).all()]
