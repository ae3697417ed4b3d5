"""The worker protocol: lease trials, heartbeat, report a result or a failure."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service import leases
from service.deps import AUTH
from service.routes.params import TrialId
from studies.protocol import (
    Heartbeat,
    HeartbeatAck,
    LeaseRequest,
    LeaseResponse,
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


@router.post("/trials/{trial_id}/failure", responses=CONFLICT)
async def report_failure(trial_id: TrialId, failure: TrialFailure, request: Request) -> TrialAck:
    """Report a training that could not finish, or release the trial (`release`)."""
    state = request.app.state
    return await state.db.run(leases.report_failure, state.db, state.settings, trial_id, failure)
