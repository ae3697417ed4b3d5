"""Studies: submit, list, inspect, pause / resume / cancel, delete, trials and exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from service import export
from service.db import Database
from service.deps import AUTH, READ, Db
from service.errors import Invalid
from service.models import StudyState, TrialState, utcnow
from service.repositories import studies, trials
from service.routes.params import MAX_ID, StudyId
from studies.schemas import DiagnosticsPage, StudyOut, TrialPage
from studies.specs import StudySpec

router = APIRouter(prefix="/api/studies", tags=["studies"], dependencies=READ)


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


def _attachment(study_id: int, suffix: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="study-{study_id}.{suffix}"'}


@router.get("/{study_id}/export.csv", response_class=PlainTextResponse)
def export_csv(study_id: StudyId, db: Db) -> StreamingResponse:
    """Every training as CSV, with its count of repeat asks (streamed; the trials numbered
    up to the last one when the download starts)."""
    with db.read() as conn:
        upto = trials.last_number(conn, study_id)
    return StreamingResponse(
        export.csv_chunks(db, study_id, upto),
        media_type="text/csv",
        headers=_attachment(study_id, "csv"),
    )


@router.get("/{study_id}/export.json")
def export_json(study_id: StudyId, db: Db) -> StreamingResponse:
    """The study, every training (with curves) and every repeat ask as JSON (streamed; the
    study as the download starts, and its trials numbered up to the last one then)."""
    with db.read() as conn:
        study = studies.get_study(conn, study_id)
        upto = trials.last_number(conn, study_id)
    return StreamingResponse(
        export.json_chunks(db, study, upto),
        media_type="application/json",
        headers=_attachment(study_id, "json"),
    )
