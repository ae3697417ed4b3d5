"""Experiments: one full grid study per optimizer, progress, and the separability report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from service import reports
from service.db import Database
from service.deps import AUTH, READ, Db, SettingsDep
from service.errors import Invalid
from service.models import utcnow
from service.repositories import experiments
from service.routes.params import ExperimentId
from studies.schemas import ExperimentOut, ExperimentReport
from studies.specs import ExperimentSpec

router = APIRouter(prefix="/api/experiments", tags=["experiments"], dependencies=READ)


@router.post("", status_code=201, dependencies=AUTH)
def create_experiment(spec: ExperimentSpec, db: Db) -> ExperimentOut:
    """Submit an experiment: a grid study per optimizer, all queued at once."""
    try:
        with db.write() as conn:
            experiment_id = experiments.create_experiment(conn, spec, utcnow())
            return experiments.get_experiment(conn, experiment_id)
    except ValueError as error:
        raise Invalid(str(error)) from None


@router.get("")
def list_experiments(
    db: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[ExperimentOut]:
    """Experiments, newest first."""
    with db.read() as conn:
        return experiments.list_experiments(conn, limit=limit)


@router.get("/{experiment_id}")
def get_experiment(experiment_id: ExperimentId, db: Db) -> ExperimentOut:
    """An experiment and the progress of its grids."""
    with db.read() as conn:
        return experiments.get_experiment(conn, experiment_id)


@router.get(
    "/{experiment_id}/report",
    responses={
        202: {"description": "Being computed: ask again shortly."},
        409: {"description": "The grids are not complete yet, or the experiment was cancelled."},
        503: {"description": "Computing the report failed; asking again retries."},
    },
)
def get_report(experiment_id: ExperimentId, db: Db, settings: SettingsDep) -> ExperimentReport:
    """The separability report, computed once the grids are complete, with the grid tables."""
    found = reports.report(db, settings.data_dir, experiment_id)
    if found is None:
        return JSONResponse(  # type: ignore[return-value]
            {"detail": "the report is being computed; ask again in a few seconds"},
            status_code=202,
            headers={"Retry-After": "5"},
        )
    return found


@router.get(
    "/{experiment_id}/tables",
    responses={
        409: {"description": "The grids are not complete yet, or the experiment was cancelled."}
    },
)
def get_tables(experiment_id: ExperimentId, db: Db) -> list[dict[str, Any]]:
    """The complete grids in the grid-table format (avatune-grid/2, every seed), one per
    optimizer, without computing the report: for clients that analyse them themselves."""
    with db.read() as conn:
        tables = experiments.grid_tables(conn, experiment_id)
    return [t.model_dump(mode="json", exclude_none=True) for t in tables]


_NOT_FOUND = {404: {"description": "No such experiment."}}
_STATE = {
    **_NOT_FOUND,
    409: {"description": "The experiment's state does not allow it (the message says why)."},
}


def _change(db: Database, experiment_id: int, action: str) -> ExperimentOut:
    with db.write() as conn:
        experiments.change_state(conn, experiment_id, action, utcnow())
        return experiments.get_experiment(conn, experiment_id)


@router.post(
    "/{experiment_id}/pause",
    summary="Pause an experiment",
    dependencies=AUTH,
    responses=_STATE,
)
def pause_experiment(experiment_id: ExperimentId, db: Db) -> ExperimentOut:
    """Pause every running grid of a running experiment at once: no more of its trials are
    handed out (leased ones may finish). 409 unless the experiment is running."""
    return _change(db, experiment_id, "pause")


@router.post(
    "/{experiment_id}/resume",
    summary="Resume an experiment",
    dependencies=AUTH,
    responses=_STATE,
)
def resume_experiment(experiment_id: ExperimentId, db: Db) -> ExperimentOut:
    """Hand out the trials of every paused grid of a paused experiment again. 409 unless the
    experiment is paused."""
    return _change(db, experiment_id, "resume")


@router.post(
    "/{experiment_id}/cancel",
    summary="Cancel an experiment",
    dependencies=AUTH,
    responses=_STATE,
)
def cancel_experiment(experiment_id: ExperimentId, db: Db) -> ExperimentOut:
    """Cancel every unfinished grid of a running or paused experiment at once, dropping their
    queued trials for good (leased ones may still report). The experiment's state becomes
    `cancelled`; its grids stay incomplete, so it gets no report. 409 once it has finished."""
    return _change(db, experiment_id, "cancel")


@router.delete(
    "/{experiment_id}",
    status_code=204,
    summary="Delete an experiment",
    dependencies=AUTH,
    responses=_NOT_FOUND,
)
def delete_experiment(experiment_id: ExperimentId, db: Db) -> Response:
    """Delete an experiment with its grid studies, their trials and its stored report, in any
    state (its leased trials' late reports are then refused)."""
    with db.write() as conn:
        experiments.delete_experiment(conn, experiment_id)
    return Response(status_code=204)
