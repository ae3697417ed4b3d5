"""The Pause / Resume / Cancel / Delete buttons of the study and experiment pages.

`controls()` is what `_controls.html` draws (the buttons the state allows); the buttons
post here (`service/static/controls.js`), and these routes do what the API's routes do
(the same repository calls, one transaction each), behind the same token as the
dashboard's forms (`form_auth`): the `token` field, else the cookie an accepted token left,
and never from another site's page. Answers are JSON: the new state, or a `detail` saying
why not (401 / 403 without the token, 404, 409 when the state does not allow it).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from service.dashboard.form_auth import cross_site, remember, token_problem
from service.dashboard.forms import first, read_form
from service.dashboard.pages import NO_STORE
from service.deps import Db
from service.errors import ServiceError
from service.models import StudyState, utcnow
from service.repositories import experiments, studies
from service.routes.params import ExperimentId, StudyId

router = APIRouter(include_in_schema=False)
Action = Literal["pause", "resume", "cancel", "delete"]
LABELS = {"pause": "Pause", "resume": "Resume", "cancel": "Cancel", "delete": "Delete"}
BY_STATE: dict[str, tuple[str, ...]] = {
    StudyState.running: ("pause", "cancel"),
    StudyState.paused: ("resume", "cancel"),
}
DONE = {"pause": "paused", "resume": "resumed", "cancel": "cancelled", "delete": "deleted"}


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def controls(
    request: Request, kind: str, target_id: int, state: str, *, deletable: bool = True
) -> dict[str, Any]:
    """What `_controls.html` needs: the actions `state` allows, where they post, and
    whether the server still needs its token from this browser."""
    root = _root(request)
    folder = "studies" if kind == "study" else "experiments"
    actions = list(BY_STATE.get(state, ())) + (["delete"] if deletable else [])
    what = f"{kind} {target_id}"
    confirm = {
        "cancel": f"Cancel {what}? Its queued trials are dropped for good"
        + (" and it will have no report." if kind == "experiment" else "."),
        "delete": f"Delete {what} with all its trials"
        + (", grid studies and report" if kind == "experiment" else "")
        + "? This cannot be undone.",
    }
    return {
        "kind": kind,
        "id": target_id,
        "state": state,
        "url": f"{root}/{folder}/{target_id}/actions",
        "home": f"{root}/",
        "buttons": [
            {"action": a, "label": LABELS[a], "confirm": confirm.get(a), "danger": a in confirm}
            for a in actions
        ],
        "token_needed": token_problem(request, None) is not None,
    }


def _refused(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=NO_STORE)


async def _act(request: Request, db: Db, kind: str, target_id: int, action: str) -> JSONResponse:
    fields = await read_form(request)
    if cross_site(request):
        return _refused(403, "this action came from another site's page; open the dashboard")
    token = first(fields, "token") or None
    problem = token_problem(request, token)
    if problem:
        return _refused(401, problem)
    repository: Any = studies if kind == "study" else experiments
    get = studies.get_study if kind == "study" else experiments.get_experiment

    def write() -> str | None:
        with db.write() as conn:
            if action == "delete":
                _delete(conn, kind, target_id)
                return None
            repository.change_state(conn, target_id, action, utcnow())
            return get(conn, target_id).state

    try:
        state = await db.run(write)
    except ServiceError as error:
        return _refused(error.status_code, error.message)
    body: dict[str, Any] = {
        "action": action,
        "state": state,
        "message": f"{kind.capitalize()} {target_id} {DONE[action]}"
        + (f": it is {state} now." if state and state != DONE[action] else "."),
    }
    if action == "delete":
        body["location"] = f"{_root(request)}/"
    response = JSONResponse(body, headers=NO_STORE)
    remember(request, response, token)
    return response


def _delete(conn: Connection, kind: str, target_id: int) -> None:
    if kind == "study":
        studies.delete_study(conn, target_id)
    else:
        experiments.delete_experiment(conn, target_id)


@router.post("/studies/{study_id}/actions/{action}")
async def study_action(study_id: StudyId, action: Action, request: Request, db: Db) -> JSONResponse:
    """Pause, resume, cancel or delete a study from its page."""
    return await _act(request, db, "study", study_id, action)


@router.post("/experiments/{experiment_id}/actions/{action}")
async def experiment_action(
    experiment_id: ExperimentId, action: Action, request: Request, db: Db
) -> JSONResponse:
    """Pause, resume, cancel or delete an experiment (all its grids) from its page."""
    return await _act(request, db, "experiment", experiment_id, action)
