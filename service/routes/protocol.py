"""The worker protocol: lease trials, heartbeat, report a result or a failure."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from service import leases
from service.deps import AUTH
from service.errors import ServiceError, json_safe, readable_detail
from service.routes.params import TrialId
from studies.protocol import (
    Heartbeat,
    HeartbeatAck,
    LeaseRequest,
    LeaseResponse,
    RawResultBatch,
    ResultBatch,
    ResultBatchAck,
    ResultItem,
    ResultItemAck,
    TrialAck,
    TrialFailure,
    TrialResult,
)

router = APIRouter(prefix="/api", tags=["workers"], dependencies=AUTH)
# The hot path: the app's database and settings come straight from `request.app.state`
# (each dependency costs more than these lookups).
CONFLICT = {409: {"description": "The lease is not live: expired, released or already reported."}}


@router.post("/leases")
async def lease_trials(body: LeaseRequest, request: Request) -> LeaseResponse:
    """Lease up to `max_trials` trials of one task and fidelity (none: retry later)."""
    state = request.app.state
    return await state.db.run(leases.lease, state.db, state.settings, body)


@router.post("/trials/{trial_id}/heartbeat", responses=CONFLICT)
async def heartbeat(trial_id: TrialId, beat: Heartbeat, request: Request) -> HeartbeatAck:
    """Extend the lease holding this trial and record progress."""
    state = request.app.state
    return await state.db.run(leases.heartbeat, state.db, state.settings, trial_id, beat)


@router.post("/trials/{trial_id}/result", responses=CONFLICT)
async def report_result(trial_id: TrialId, result: TrialResult, request: Request) -> TrialAck:
    """Report a finished training (a diverged run is a result)."""
    db = request.app.state.db
    return await db.run(leases.report_result, db, trial_id, result)


@router.post("/trials/results")
async def report_results(batch: RawResultBatch, request: Request) -> ResultBatchAck:
    """Report many finished trainings at once (`ResultBatch`), in one transaction; each item
    is answered on its own: 200, 404 (trial gone), 409 (lease not live) or 422 (invalid)."""
    checked = [_check(index, raw) for index, raw in enumerate(batch.items)]
    valid = [(c.trial_id, c.result) for c in checked if isinstance(c, ResultItem)]
    db = request.app.state.db
    answers = iter(await db.run(leases.report_results, db, valid) if valid else ())
    acks = [_ack(c, next(answers)) if isinstance(c, ResultItem) else c for c in checked]
    return ResultBatchAck(items=acks)


def _check(index: int, raw: dict[str, Any]) -> ResultItem | ResultItemAck:
    """The item validated, or its 422 (issues worded as the single result route words them)."""
    try:
        return ResultItem.model_validate(raw)
    except ValidationError as error:
        errors = [{**e, "loc": ("body", "items", index, *e["loc"])} for e in error.errors()]
        detail = json_safe(readable_detail(json_safe(errors), ResultBatch))
        trial_id = raw.get("trial_id")
        known = trial_id if type(trial_id) is int else None
        return ResultItemAck(trial_id=known, status=422, detail=detail)


def _ack(item: ResultItem, answer: TrialAck | ServiceError) -> ResultItemAck:
    """A recorded or refused item's answer."""
    if isinstance(answer, TrialAck):
        return ResultItemAck(trial_id=item.trial_id, status=200, state=answer.state)
    return ResultItemAck(trial_id=item.trial_id, status=answer.status_code, detail=answer.message)


@router.post("/trials/{trial_id}/failure", responses=CONFLICT)
async def report_failure(trial_id: TrialId, failure: TrialFailure, request: Request) -> TrialAck:
    """Report a training that could not finish, or release the trial (`release`)."""
    state = request.app.state
    return await state.db.run(leases.report_failure, state.db, state.settings, trial_id, failure)
