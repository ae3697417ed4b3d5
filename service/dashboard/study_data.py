"""The study page's JSON: a full snapshot (summary, figures, cursor), or the trials that
finished after a cursor — what the page polls for, so it never reloads everything."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from service.dashboard import aggregate as agg
from service.dashboard import study_charts
from service.dashboard.landscape import Landscape
from service.dashboard.rates import eta_seconds, study_rates
from service.models import StudyState
from service.repositories.studies import get_study
from studies.schemas import StudyOut

#: More new trials than this since the cursor: send a full snapshot instead.
MAX_NEW = 2000
ACTIVE = (StudyState.running, StudyState.paused)


def summary(study: StudyOut, rate: float) -> dict[str, Any]:
    """Progress in trainings, counts, repeats, best, pace and time left of a study."""
    active = study.state in ACTIVE
    return {
        "id": study.id,
        "state": study.state,
        "budget": study.budget,
        "trainings_done": study.trainings_done,
        "in_flight": study.trainings_in_flight,
        "in_flight_limit": study.in_flight_limit,
        "repeats": study.repeats,
        "progress": round(study.progress, 4),
        "counts": study.counts,
        "best": None if study.best is None else study.best.model_dump(),
        "rate_per_min": round(rate, 2),
        "eta_s": eta_seconds(study.budget - study.trainings_done, rate) if active else None,
        "live": active,
    }


def snapshot(conn: Connection, study: StudyOut, now: datetime) -> dict[str, Any]:
    """Everything the page draws, aggregated on the server."""
    landscape = Landscape.of(study.spec)
    data = agg.aggregate(conn, study.id, landscape, now)
    return {
        "full": True,
        "study": summary(study, data.rate),
        "cells": list(landscape.shape),
        "filled": data.filled,
        "steps": data.steps,
        "last_number": data.last_number,
        "figures": {
            "heatmap": study_charts.study_heatmap(conn, study, landscape, data.z),
            "best": study_charts.best_so_far(study, data.steps, data.last_number),
        },
        "cursor": agg.encode_cursor(data.cursor),
    }


def increment(conn: Connection, study_id: int, cursor_text: str, now: datetime) -> dict[str, Any]:
    """Trials finished after the cursor as rows ``[id, number, state, value, row, column]``,
    with the new summary and cursor; a full snapshot when too many arrived."""
    cursor = agg.decode_cursor(cursor_text)
    study = get_study(conn, study_id)
    rows = agg.finished_after(conn, study_id, cursor, MAX_NEW + 1)
    if len(rows) > MAX_NEW:
        return snapshot(conn, study, now)
    landscape = Landscape.of(study.spec)
    trials = []
    for row in rows:
        i, j = landscape.cell(row.alpha, row.eps, row.i_alpha, row.j_eps)
        value = None if row.value is None else round(row.value, agg.DECIMALS)
        trials.append([row.id, row.number, row.state, value, i, j])
    if rows:
        cursor = (rows[-1].finished_at, rows[-1].id)
    rate = study_rates(conn, [study_id], now).get(study_id, 0.0)
    return {
        "full": False,
        "study": summary(study, rate),
        "trials": trials,
        "cursor": agg.encode_cursor(cursor),
    }
