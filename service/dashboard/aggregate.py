"""A study's finished trials summed up on the server in one pass: the heatmap (best value per
cell), the best-so-far steps, the recent pace and the cursor for incremental polling.

The browser gets these aggregates instead of every trial, so pages stay small at 10,000
trials; afterwards it asks only for trials finished after the cursor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Row,
    and_,
    or_,
    select,
    type_coerce,
)

from service.dashboard.landscape import Landscape
from service.dashboard.query_values import is_digits
from service.dashboard.rates import FINISHED, WINDOW, per_minute
from service.models import Trial

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
#: Decimals kept of values sent to the browser.
DECIMALS = 6

Cursor = tuple[datetime, int]


@dataclass
class Aggregate:
    """Everything the study page draws, computed from the study's finished trials."""

    landscape: Landscape
    z: list[list[float | None]]
    #: (distinct trainings so far, best value so far) at each improvement, in training order.
    steps: list[tuple[int, float]] = field(default_factory=list)
    last_number: int | None = None
    cursor: Cursor | None = None
    rate: float = 0.0
    finished: int = 0

    @property
    def filled(self) -> int:
        """Cells of the heatmap that hold a value."""
        return sum(v is not None for row in self.z for v in row)


#: A training's ordinal, 1-based: the x of the best-so-far line (distinct trainings).
_ORDINAL = (Trial.training + 1).label("number")


def _finished_originals(study_id: int) -> tuple[ColumnElement[bool], ...]:
    return (
        Trial.study_id == study_id,
        Trial.state.in_(FINISHED),
        Trial.source_trial_id.is_(None),
    )


def aggregate(conn: Connection, study_id: int, landscape: Landscape, now: datetime) -> Aggregate:
    """Sum up the finished trainings (repeat asks left out) of one study."""
    rows = conn.execute(
        select(
            _ORDINAL,
            Trial.i_alpha,
            Trial.j_eps,
            Trial.alpha,
            Trial.eps,
            Trial.value,
            Trial.id,
            _naive(Trial.finished_at),
            _naive(Trial.leased_at),
        )
        .where(*_finished_originals(study_id))
        .order_by(_ORDINAL)
    ).all()
    out = Aggregate(landscape, landscape.empty(), finished=len(rows))
    z, steps, best = out.z, out.steps, math.inf
    n_rows, n_cols = landscape.shape
    binned = landscape.bounds is not None
    since = (now - WINDOW).astimezone(UTC).replace(tzinfo=None)
    cursor: tuple[datetime, int] | None = None
    recent, first = 0, None
    for number, i, j, alpha, eps, value, trial_id, finished_at, leased_at in rows:
        if finished_at is not None:
            if cursor is None or (finished_at, trial_id) > cursor:
                cursor = (finished_at, trial_id)
            if finished_at >= since:
                recent += 1
                started = leased_at or finished_at
                first = started if first is None or started < first else first
        if value is None:
            continue
        if binned or i is None or j is None or not (0 <= i < n_rows and 0 <= j < n_cols):
            i, j = landscape.cell(alpha, eps, i, j)
        rounded = round(value, DECIMALS)
        cell = z[i][j]
        if cell is None or rounded < cell:
            z[i][j] = rounded
        if value < best:
            best = value
            steps.append((number, rounded))
    out.last_number = rows[-1].number if rows else None
    out.cursor = None if cursor is None else (cursor[0].replace(tzinfo=UTC), cursor[1])
    out.rate = per_minute(recent, None if first is None else first.replace(tzinfo=UTC), now)
    return out


def _naive(column: Any) -> Any:
    # UTC timestamps read as plain (naive) datetimes: much cheaper than the aware model type
    return type_coerce(column, DateTime())


def finished_after(
    conn: Connection, study_id: int, cursor: Cursor, limit: int
) -> Sequence[Row[Any]]:
    """Finished trials after `cursor` (finish time, id), oldest first, `limit` at most."""
    at, trial_id = cursor
    return conn.execute(
        select(
            Trial.id,
            _ORDINAL,
            Trial.state,
            Trial.value,
            Trial.alpha,
            Trial.eps,
            Trial.i_alpha,
            Trial.j_eps,
            Trial.finished_at,
        )
        .where(
            *_finished_originals(study_id),
            or_(
                Trial.finished_at > at,
                and_(Trial.finished_at == at, Trial.id > trial_id),
            ),
        )
        .order_by(Trial.finished_at, Trial.id)
        .limit(limit)
    ).all()


def encode_cursor(cursor: Cursor | None) -> str | None:
    """The cursor as text for a URL: '<finish time in µs since 1970>.<trial id>'."""
    if cursor is None:
        return None
    at, trial_id = cursor
    return f"{(at - _EPOCH) // _MICRO}.{trial_id}"


def decode_cursor(text: str) -> Cursor:
    """The cursor from its text; ValueError when malformed."""
    micros, _, trial_id = text.partition(".")
    problem = ValueError(f"bad cursor {text[:40]!r}: pass back the `cursor` of the last answer")
    if not (is_digits(micros, 18) and is_digits(trial_id, 10)):
        raise problem
    try:
        return _EPOCH + int(micros) * _MICRO, min(int(trial_id), 2**31 - 1)
    except OverflowError:
        raise problem from None
