"""Throughput: trials finished per minute over a recent window, per study or per worker,
and the time left at that pace."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from service.models import Trial, TrialState

WINDOW = timedelta(minutes=10)
#: The shortest span a rate is measured over, so a first quick trial does not read as 1000/min.
MIN_SPAN_SECONDS = 15.0
FINISHED = (TrialState.complete, TrialState.diverged, TrialState.failed)


def per_minute(count: int, first: datetime | None, now: datetime) -> float:
    """`count` trials since `first` (clamped to the window), as trials per minute."""
    if not count or first is None:
        return 0.0
    start = max(first, now - WINDOW)
    span = max((now - start).total_seconds(), MIN_SPAN_SECONDS)
    return count * 60.0 / span


def eta_seconds(remaining: int, rate: float) -> float | None:
    """Seconds until `remaining` trials are done at `rate` per minute; None when stalled."""
    if remaining <= 0:
        return 0.0
    return None if rate <= 0 else remaining * 60.0 / rate


def _grouped(conn: Connection, column: Any, keys: list[Any], now: datetime) -> dict[Any, float]:
    started = func.min(func.coalesce(Trial.leased_at, Trial.finished_at))
    rows = conn.execute(
        select(column, func.count(), started)
        .where(
            column.in_(keys),
            Trial.state.in_(FINISHED),
            Trial.source_trial_id.is_(None),
            Trial.finished_at >= now - WINDOW,
        )
        .group_by(column)
    ).all()
    return {key: per_minute(n, first, now) for key, n, first in rows}


def study_rates(conn: Connection, study_ids: Iterable[int], now: datetime) -> dict[int, float]:
    """Trials per minute of each study over the last `WINDOW` (absent: none finished)."""
    ids = list(study_ids)
    return _grouped(conn, Trial.study_id, ids, now) if ids else {}


def worker_rates(conn: Connection, worker_ids: Iterable[str], now: datetime) -> dict[str, float]:
    """Trials per minute each worker finished over the last `WINDOW`."""
    ids = list(worker_ids)
    return _grouped(conn, Trial.worker_id, ids, now) if ids else {}
