"""The experiment page (`/experiments/{id}`): the separability report once stored (Figures 1
and 2, metrics with confidence intervals, the verdict); until then the grids filling in."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import Connection

from service import reports
from service.dashboard.aggregate import aggregate
from service.dashboard.controls import controls
from service.dashboard.landscape import Landscape
from service.dashboard.pages import NO_STORE, error_page, render
from service.dashboard.rates import eta_seconds, study_rates
from service.dashboard.report_view import cached_view
from service.dashboard.study_charts import grids_heatmap
from service.db import Database
from service.deps import Db, SettingsDep
from service.errors import ServiceError
from service.models import StudyState, utcnow
from service.repositories.experiments import get_experiment, stored_report
from service.routes.params import ExperimentId
from studies.objectives import objective_of
from studies.schemas import ExperimentOut

router = APIRouter(include_in_schema=False)
FINISHED = (StudyState.done, StudyState.failed, StudyState.cancelled)
ACTIVE = (StudyState.running, StudyState.paused)


def progress(conn: Connection, experiment: ExperimentOut, now: datetime) -> dict[str, Any]:
    """Per-study progress, pace and time left, and the grids so far side by side."""
    rates = study_rates(conn, [s.id for s in experiment.studies], now)
    panels = []
    for study in experiment.studies:
        landscape = Landscape.of(study.spec)
        panels.append((study.optimizer, landscape, aggregate(conn, study.id, landscape, now).z))
    rate = sum(rates.values())
    remaining = sum(s.budget - s.trainings_done for s in experiment.studies if s.state in ACTIVE)
    return {
        "state": experiment.state,
        # cancelled grids stay incomplete: no report is made (or tried again)
        "cancelled": experiment.state == StudyState.cancelled,
        "progress": round(experiment.progress, 4),
        "complete": all(s.state in FINISHED for s in experiment.studies),
        "rate_per_min": round(rate, 2),
        "eta_s": eta_seconds(remaining, rate) if remaining else None,
        "studies": [
            {
                "id": s.id,
                "optimizer": s.optimizer,
                "state": s.state,
                "trainings_done": s.trainings_done,
                "budget": s.budget,
                "progress": round(s.progress, 4),
                "best": s.best.value if s.best else None,
                "rate_per_min": round(rates.get(s.id, 0.0), 2),
            }
            for s in experiment.studies
        ],
        "figure": grids_heatmap(conn, experiment.task, experiment.studies, panels),
    }


def report_status(db: Database, data_dir: Path, experiment_id: int) -> dict[str, Any]:
    """Start computing the report of complete grids (`service.reports`), or say why not."""
    try:
        ready = reports.report(db, data_dir, experiment_id) is not None
    except ServiceError as error:  # grids incomplete, or the last computation failed
        return {"report_ready": False, "computing": False, "report_error": error.message}
    return {"report_ready": ready, "computing": not ready, "report_error": None}


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(
    experiment_id: ExperimentId, request: Request, db: Db, settings: SettingsDep
) -> HTMLResponse:
    """The report of an experiment, or the progress of its grids (and of its report)."""
    try:
        with db.read() as conn:
            experiment = get_experiment(conn, experiment_id)
            stored = stored_report(conn, experiment_id)
            live = None if stored else progress(conn, experiment, utcnow())
    except ServiceError as error:
        return error_page(request, error.status_code, error.message)
    if live is not None and live["complete"] and not live["cancelled"]:
        live.update(report_status(db, settings.data_dir, experiment_id))
        if live["report_ready"]:
            with db.read() as conn:
                stored = stored_report(conn, experiment_id)
    view = None
    if stored is not None:
        view = cached_view(experiment_id, stored[0], stored[1], settings.data_dir)
    context = {
        "experiment": experiment,
        "report": view,
        "live": live,
        "delta_unit": objective_of(experiment.task).delta_unit,
        "controls": controls(request, "experiment", experiment.id, experiment.state),
    }
    return render(request, "experiment.html", context)


@router.get("/experiments/{experiment_id}/data")
def experiment_data(experiment_id: ExperimentId, db: Db, settings: SettingsDep) -> JSONResponse:
    """Progress and grids so far, and whether the report is ready, for the page to poll."""
    with db.read() as conn:
        experiment = get_experiment(conn, experiment_id)
        ready = stored_report(conn, experiment_id) is not None
        body = progress(conn, experiment, utcnow())
    body.update(report_ready=ready, computing=False, report_error=None)
    if body["complete"] and not ready and not body["cancelled"]:
        body.update(report_status(db, settings.data_dir, experiment_id))
    return JSONResponse(body, headers=NO_STORE)
