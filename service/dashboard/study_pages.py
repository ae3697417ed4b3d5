"""The study page (`/studies/{id}`) and what it polls: new trials, table pages, curves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from service.dashboard import curves
from service.dashboard.controls import controls
from service.dashboard.pages import NO_STORE, error_page, render
from service.dashboard.study_charts import curves_figure
from service.dashboard.study_data import increment, snapshot
from service.dashboard.trial_table import FILTERS, SORTS, TableQuery, trial_page
from service.deps import Db
from service.errors import Invalid, NotFound
from service.models import utcnow
from service.repositories.studies import get_study
from service.routes.params import StudyId

router = APIRouter(include_in_schema=False)
Cursor = Annotated[
    str | None, Query(max_length=40, description="The `cursor` of the previous answer.")
]


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study_page(study_id: StudyId, request: Request, db: Db) -> HTMLResponse:
    """Heatmap, best-so-far, learning curves and the trial table of one study, live."""
    query = TableQuery.parse(request.query_params)
    chosen = curves.parse_ids(request.query_params.getlist("curve"))
    try:
        with db.read() as conn:
            study = get_study(conn, study_id)
            data = snapshot(conn, study, utcnow())
            table = trial_page(conn, study_id, query)
            selected = chosen or curves.best_ids(conn, study_id)
            lines = curves.load(conn, study_id, selected)
    except NotFound as error:
        return error_page(request, 404, error.message)
    context = {
        "study": study,
        "data": data,
        "table": table,
        "selected": [line["id"] for line in lines],
        "curves": curves_figure(study, lines),
        "sorts": SORTS,
        "filters": FILTERS,
        # an experiment's grid goes with its experiment: deleted from the experiment's page
        "controls": controls(
            request, "study", study.id, study.state, deletable=study.experiment_id is None
        ),
    }
    return render(request, "study.html", context)


@router.get("/studies/{study_id}/data")
def study_data(study_id: StudyId, db: Db, after: Cursor = None) -> JSONResponse:
    """A snapshot of the page's figures, or (with `after`) only trials finished since."""
    now = utcnow()
    with db.read() as conn:
        if after:
            try:
                payload = increment(conn, study_id, after, now)
            except ValueError as error:
                raise Invalid(str(error)) from None
        else:
            payload = snapshot(conn, get_study(conn, study_id), now)
    return JSONResponse(payload, headers=NO_STORE)


@router.get("/studies/{study_id}/trials", response_class=HTMLResponse)
def trials_fragment(study_id: StudyId, request: Request, db: Db) -> HTMLResponse:
    """One page of the trial table, as the HTML fragment the page swaps in."""
    query = TableQuery.parse(request.query_params)
    selected = curves.parse_ids(request.query_params.getlist("curve"))
    try:
        with db.read() as conn:
            study = get_study(conn, study_id)
            table = trial_page(conn, study_id, query)
    except NotFound as error:
        return error_page(request, 404, error.message)
    context = {
        "study": study,
        "table": table,
        "selected": selected,
        "sorts": SORTS,
        "filters": FILTERS,
    }
    return render(request, "_trials_table.html", context)


@router.get("/studies/{study_id}/curves")
def curves_data(study_id: StudyId, request: Request, db: Db) -> JSONResponse:
    """The learning-curve figure of the trials in `curve` (ids, at most 10)."""
    selected = curves.parse_ids(request.query_params.getlist("curve"))
    with db.read() as conn:
        study = get_study(conn, study_id)
        lines = curves.load(conn, study_id, selected)
    body = {"selected": [line["id"] for line in lines], "figure": curves_figure(study, lines)}
    return JSONResponse(body, headers=NO_STORE)
