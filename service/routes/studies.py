"""Studies: submit, list, inspect, pause / resume / cancel, delete, trials and exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from service import export
from service.auth import require_token
from service.db import Database
from service.deps import get_db
from service.errors import Invalid
from service.models import StudyState, TrialState, utcnow
from service.repositories import studies, trials
from service.routes.params import MAX_ID, StudyId
from studies.schemas import DiagnosticsPage, StudyOut, TrialPage
from studies.specs import StudySpec

router = APIRouter(prefix="/api/studies", tags=["studies"])
Db = Annotated[Database, Depends(get_db)]
AUTH = [Depends(require_token)]


@router.post("", status_code=201, dependencies=AUTH)
def create_study(spec: StudySpec, db: Db) -> StudyOut:
    """Submit a study; a grid study's points are queued at once."""
    try:
        with db.write() as conn:
            study_id = studies.create_study(conn, spec, utcnow())
            return studies.get_study(conn, study_id)
    except ValueError as error:
        raise Invalid(str(error)) from None


@router.get("")
def list_studies(
    db: Db,
    state: StudyState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> list[StudyOut]:
    """Studies, newest first, with progress and best value."""
    with db.read() as conn:
        return studies.list_studies(conn, state=state, limit=limit, offset=offset)


@router.get("/{study_id}")
def get_study(study_id: StudyId, db: Db) -> StudyOut:
    """One study."""
    with db.read() as conn:
        return studies.get_study(conn, study_id)


def _change(db: Database, study_id: int, action: str) -> StudyOut:
    with db.write() as conn:
        studies.change_state(conn, study_id, action, utcnow())
        return studies.get_study(conn, study_id)


@router.post("/{study_id}/pause", dependencies=AUTH)
def pause_study(study_id: StudyId, db: Db) -> StudyOut:
    """Stop handing out the study's trials (leased ones may finish)."""
    return _change(db, study_id, "pause")


@router.post("/{study_id}/resume", dependencies=AUTH)
def resume_study(study_id: StudyId, db: Db) -> StudyOut:
    """Hand out the study's trials again."""
    return _change(db, study_id, "resume")


@router.post("/{study_id}/cancel", dependencies=AUTH)
def cancel_study(study_id: StudyId, db: Db) -> StudyOut:
    """Drop the study's queued trials for good (leased ones may still report)."""
    return _change(db, study_id, "cancel")


@router.delete("/{study_id}", status_code=204, dependencies=AUTH)
def delete_study(study_id: StudyId, db: Db) -> Response:
    """Delete a study and its trials."""
    with db.write() as conn:
        studies.delete_study(conn, study_id)
    return Response(status_code=204)


@router.get("/{study_id}/trials")
def list_trials(
    study_id: StudyId,
    db: Db,
    state: Annotated[list[TrialState], Query(max_length=len(TrialState))] = [],  # noqa: B006
    after: Annotated[int | None, Query(ge=-1, le=MAX_ID, description="Trial number.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    curves: bool = False,
    repeats: Annotated[
        bool, Query(description="Also list the tuner's repeat asks (answered for free).")
    ] = False,
) -> TrialPage:
    """Trainings in number order (each with its count of repeat asks); `after` (a trial
    number) pages incrementally."""
    with db.read() as conn:
        return trials.page(
            conn,
            study_id,
            states=[s.value for s in state],
            after=after,
            limit=limit,
            curves=curves,
            repeats=repeats,
        )


@router.get("/{study_id}/diagnostics")
def list_diagnostics(
    study_id: StudyId,
    db: Db,
    after: Annotated[int | None, Query(ge=-1, le=MAX_ID, description="Trial number.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DiagnosticsPage:
    """AvaGrad-family mechanism diagnostics (opt-in: `fidelity.diagnostics_every`) of each
    training that has them: its α, ε and every seed's records of γ, the fraction of v = 0
    and each tensor's share of Σq⁻²; `after` (a trial number) pages."""
    with db.read() as conn:
        return trials.diagnostics_page(conn, study_id, after=after, limit=limit)


@router.get("/{study_id}/export.csv", response_class=PlainTextResponse)
def export_csv(study_id: StudyId, db: Db) -> PlainTextResponse:
    """Every training as CSV, with its count of repeat asks."""
    with db.read() as conn:
        rows = trials.all_trials(conn, study_id, curves=False)
    return PlainTextResponse(
        export.to_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}.csv"'},
    )


@router.get("/{study_id}/export.json")
def export_json(study_id: StudyId, db: Db) -> JSONResponse:
    """The study, every training (with curves) and every repeat ask as JSON."""
    with db.read() as conn:
        study = studies.get_study(conn, study_id)
        rows = trials.all_trials(conn, study_id, repeats=True)
    return JSONResponse(
        export.to_json(study, rows),
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}.json"'},
    )
