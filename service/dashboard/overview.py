"""The front page (`/`): studies and experiments with state, progress, best value, pace and
time left; the tables refresh themselves in place."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, func, select

from service.dashboard.pages import render
from service.dashboard.rates import eta_seconds, study_rates
from service.deps import Db
from service.models import Study, StudyState, utcnow
from service.repositories.experiments import list_experiments
from service.repositories.studies import list_studies

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
EXPERIMENTS_SHOWN = 50
ACTIVE = (StudyState.running, StudyState.paused)
Page = Annotated[int, Query(ge=1, le=10**6)]


def overview(conn: Connection, now: datetime, page: int) -> dict[str, Any]:
    """The rows of both tables: each study or experiment with its pace and time left."""
    total = conn.execute(select(func.count(Study.id))).scalar_one()
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(page, pages)
    studies = list_studies(conn, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    experiments = list_experiments(conn, limit=EXPERIMENTS_SHOWN)
    owned = [s.id for e in experiments for s in e.studies]
    rates = study_rates(conn, [s.id for s in studies] + owned, now)
    study_rows = [
        {
            "study": s,
            "rate": rates.get(s.id, 0.0),
            "eta": eta_seconds(s.budget - s.trainings_done, rates.get(s.id, 0.0))
            if s.state in ACTIVE
            else None,
        }
        for s in studies
    ]
    experiment_rows = []
    for e in experiments:
        rate = sum(rates.get(s.id, 0.0) for s in e.studies)
        remaining = sum(s.budget - s.trainings_done for s in e.studies if s.state in ACTIVE)
        experiment_rows.append(
            {
                "experiment": e,
                "rate": rate,
                "eta": eta_seconds(remaining, rate) if remaining else None,
                "best": [(s.optimizer, s.best.value if s.best else None) for s in e.studies],
            }
        )
    return {
        "studies": study_rows,
        "experiments": experiment_rows,
        "page": page,
        "pages": pages,
        "total": total,
        "now": now,
    }


@router.get("/", response_class=HTMLResponse)
def index(request: Request, db: Db, page: Page = 1) -> HTMLResponse:
    """Studies and experiments at a glance."""
    with db.read() as conn:
        context = overview(conn, utcnow(), page)
    return render(request, "overview.html", context)


@router.get("/partials/overview", response_class=HTMLResponse)
def overview_fragment(request: Request, db: Db, page: Page = 1) -> HTMLResponse:
    """The front page's tables alone, for in-place refresh."""
    with db.read() as conn:
        context = overview(conn, utcnow(), page)
    return render(request, "_overview_tables.html", context)
