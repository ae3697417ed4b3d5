"""Forms that create a study (`/studies/new`) or an experiment (`/experiments/new`).

The server validates every field with the same pydantic specs as the JSON API and shows
readable errors next to the fields (status 422); a valid form creates the study or
experiment and redirects to its page.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from service.dashboard import experiment_form, study_form
from service.dashboard.form_auth import cross_site, remember, token_problem
from service.dashboard.forms import FormErrors, first, read_form
from service.dashboard.pages import render
from service.db import Database
from service.deps import Db
from service.errors import ServiceError
from service.models import utcnow
from service.repositories.experiments import create_experiment
from service.repositories.studies import create_study

router = APIRouter(include_in_schema=False)


def _form(
    request: Request, kind: str, values: dict[str, Any], errors: FormErrors, status: int = 200
) -> HTMLResponse:
    form = study_form if kind == "study" else experiment_form
    context = {"values": values, "errors": errors, "labels": form.LABELS, **form.CHOICES}
    return render(request, f"{kind}_form.html", context, status)


async def _submit(
    request: Request,
    db: Database,
    kind: str,
    form: ModuleType,
    create: Callable[[Connection, Any, Any], int],
) -> Response:
    fields = await read_form(request)
    values = form.values(fields)
    errors = FormErrors()
    if cross_site(request):
        errors.add(None, "this form was posted from another site; open the dashboard and retry")
        return _form(request, kind, values, errors, 403)
    token = first(fields, "token")
    problem = token_problem(request, token or None)
    if problem:
        errors.add("token", problem)
        return _form(request, kind, values, errors, 401)
    spec, errors = form.validate(values)
    if spec is None:
        return _form(request, kind, values, errors, 422)

    def write() -> int:
        with db.write() as conn:
            return create(conn, spec, utcnow())

    try:
        new_id = await db.run(write)
    except (ValueError, ServiceError) as error:
        errors.add(None, getattr(error, "message", str(error)))
        return _form(request, kind, values, errors, 422)
    root = request.scope.get("root_path", "").rstrip("/")
    folder = "studies" if kind == "study" else "experiments"
    response = RedirectResponse(f"{root}/{folder}/{new_id}", status_code=303)
    remember(request, response, token)
    return response


@router.get("/studies/new", response_class=HTMLResponse)
def new_study(request: Request) -> HTMLResponse:
    """The create-study form."""
    return _form(request, "study", study_form.values(), FormErrors())


@router.post("/studies/new", response_model=None)
async def post_study(request: Request, db: Db) -> Response:
    """Create a study from the form, or show what to fix."""
    return await _submit(request, db, "study", study_form, create_study)


@router.get("/experiments/new", response_class=HTMLResponse)
def new_experiment(request: Request) -> HTMLResponse:
    """The create-experiment form."""
    return _form(request, "experiment", experiment_form.values(), FormErrors())


@router.post("/experiments/new", response_model=None)
async def post_experiment(request: Request, db: Db) -> Response:
    """Create an experiment from the form, or show what to fix."""
    return await _submit(request, db, "experiment", experiment_form, create_experiment)
