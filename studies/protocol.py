"""The worker wire protocol: lease, heartbeat, result and failure bodies (server and worker).

A lease hands a worker up to K trials of one task and fidelity under one token; every
report on a leased trial presents that token. A heartbeat on any trial of a lease extends
the whole lease.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from studies.specs import Fidelity, FiniteFloat, OptimizerRef, TaskRef, text

#: Points of a learning curve a result may carry.
MAX_CURVE = 1000
#: Trials one lease may ask for.
MAX_LEASE_TRIALS = 4096

WorkerId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@/+-]+$")
]
Token = Annotated[
    str, StringConstraints(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
]
ShortText = text(200)


def _scrub(value: str) -> str:
    return value.replace("\x00", "\ufffd")


class LeaseRequest(BaseModel):
    """A worker asks for up to `max_trials` trials."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId
    max_trials: Annotated[int, Field(ge=1, le=MAX_LEASE_TRIALS)] = 1
    name: ShortText | None = None
    host: ShortText | None = None
    device: ShortText | None = Field(default=None, description="e.g. 'cuda: NVIDIA H100' or 'cpu'.")


class LeasedTrial(BaseModel):
    """One trial to train: its point and the optimizer of its study."""

    trial_id: int
    study_id: int
    number: int
    alpha: float
    eps: float
    optimizer: OptimizerRef


class LeaseResponse(BaseModel):
    """Trials of one task and fidelity under one token, or none (`retry_after` seconds)."""

    token: str | None = None
    expires_at: datetime | None = None
    lease_seconds: float
    heartbeat_seconds: float
    task: TaskRef | None = None
    fidelity: Fidelity | None = None
    trials: list[LeasedTrial] = Field(default_factory=list)
    retry_after: float = Field(default=0.0, description="When empty: seconds before asking again.")


class Heartbeat(BaseModel):
    """Keeps a lease alive and records progress (steps done of total)."""

    model_config = ConfigDict(extra="forbid")

    token: Token
    done: Annotated[int, Field(ge=0, le=2**53)] = 0
    total: Annotated[int, Field(ge=0, le=2**53)] = 0


class HeartbeatAck(BaseModel):
    """The lease's new expiry."""

    expires_at: datetime
    trials: int = Field(description="Trials still held under the lease.")


class TrialResult(BaseModel):
    """A finished training: validation objective (error %), test metric, loss curve."""

    model_config = ConfigDict(extra="forbid")

    token: Token
    value: FiniteFloat = Field(description="The objective (validation error); finite.")
    test_value: FiniteFloat | None = None
    curve: Annotated[list[FiniteFloat], Field(max_length=MAX_CURVE)] = Field(default_factory=list)
    diverged: bool = Field(
        default=False, description="A diverged run is a result: value at chance level."
    )
    seconds: Annotated[FiniteFloat, Field(ge=0)] = 0.0


class TrialFailure(BaseModel):
    """A training that could not finish; `release` hands it back without using an attempt."""

    model_config = ConfigDict(extra="forbid")

    token: Token
    error: Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_scrub)] = ""
    release: bool = False


class TrialAck(BaseModel):
    """The state a report left the trial in."""

    trial_id: int
    state: str
