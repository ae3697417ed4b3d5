"""The worker wire protocol: lease, heartbeat, result and failure bodies (server and worker).

A lease hands a worker up to K trials of one task and fidelity under one token; every
report on a leased trial presents that token. A heartbeat on any trial of a lease extends
the whole lease. Results go one per POST or many at once (`ResultBatch`), the server
answering each item on its own (`ResultBatchAck`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from studies.plugin_names import MAX_NAME, PluginKind
from studies.specs import Fidelity, FiniteFloat, OptimizerRef, TaskRef, text

#: Points of a learning curve a result may carry.
MAX_CURVE = 1000
#: Trials one lease may ask for.
MAX_LEASE_TRIALS = 4096
#: Studies one lease request may ask to be left out (`LeaseRequest.skip_studies`).
MAX_SKIP_STUDIES = 256
#: Training seeds one result may carry (as many as a fidelity may ask for).
MAX_SEEDS = 16
#: Diagnostics records per seed, named shares per record, characters per name, and values
#: per result in all (a record costs its shares + DIAGNOSTICS_RECORD_COST): a result stays
#: well under the server's default body limit (1 MiB).
MAX_DIAGNOSTICS_RECORDS = 100
MAX_DIAGNOSTICS_NAMES = 64
MAX_DIAGNOSTICS_NAME = 64
MAX_DIAGNOSTICS_VALUES = 16_384
DIAGNOSTICS_RECORD_COST = 3

WorkerId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@/+-]+$")
]
Token = Annotated[
    str, StringConstraints(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
]
ShortText = text(200)
DbId = Annotated[int, Field(ge=1, le=2**31 - 1)]
_Item = TypeVar("_Item")
#: One entry per training seed of a trial.
SeedList = Annotated[list[_Item], Field(min_length=1, max_length=MAX_SEEDS)]


def _scrub(value: str) -> str:
    return value.replace("\x00", "\ufffd")


#: Task or optimizer names one lease request may advertise (of each kind), or list unable.
MAX_CAPABILITIES = 512
#: Names an empty lease may ask a worker to probe.
MAX_PROBES = 32
CapabilityName = text(MAX_NAME, min_length=1)
Names = Annotated[list[CapabilityName], Field(max_length=MAX_CAPABILITIES)]


class Capability(BaseModel):
    """A task or optimizer, by the name a spec gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PluginKind
    name: CapabilityName


class Unable(Capability):
    """A task or optimizer a worker tried and cannot run, and why (shown on waiting studies)."""

    error: Annotated[str, StringConstraints(max_length=500), AfterValidator(_scrub)] = ""


class LeaseRequest(BaseModel):
    """A worker asks for up to `max_trials` trials it can run."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId
    max_trials: Annotated[int, Field(ge=1, le=MAX_LEASE_TRIALS)] = 1
    name: ShortText | None = None
    host: ShortText | None = None
    device: ShortText | None = Field(default=None, description="e.g. 'cuda: NVIDIA H100' or 'cpu'.")
    study_id: DbId | None = Field(
        default=None,
        description="Lease only this study's trials (a user's own training loop runs them).",
    )
    tasks: Names | None = Field(
        default=None, description="Tasks this worker can run, by spec name; null: any."
    )
    optimizers: Names | None = Field(
        default=None, description="Optimizers this worker can run, by spec name; null: any."
    )
    unable: Annotated[list[Unable], Field(max_length=MAX_CAPABILITIES)] = Field(
        default_factory=list, description="What this worker tried and cannot run, and why."
    )
    skip_studies: Annotated[list[DbId], Field(max_length=MAX_SKIP_STUDIES)] = Field(
        default_factory=list,
        description="Studies this worker found it cannot train (their task does not fit "
        "its device): lease none of their trials.",
    )

    def capabilities(self) -> Capabilities:
        """What this request says the worker can and cannot run (the server keeps it)."""
        return Capabilities(
            study_id=self.study_id,
            tasks=self.tasks,
            optimizers=self.optimizers,
            unable=self.unable,
        )


class Capabilities(BaseModel):
    """What a worker can run, as its last lease request said: one study's trials (a user's
    own loop), or trials whose task and optimizer it advertised (a list left null: any)."""

    study_id: int | None = None
    tasks: list[str] | None = None
    optimizers: list[str] | None = None
    unable: list[Unable] = Field(default_factory=list)

    def advertises(self, kind: PluginKind, name: str) -> bool:
        """Whether this worker listed `name` among its tasks or optimizers (or sent no list)."""
        names = self.tasks if kind == "task" else self.optimizers
        return names is None or name in names

    def can_run(self, study_id: int, task: str, optimizer: str) -> bool:
        """Whether this worker would lease trials of that study."""
        if self.study_id is not None:
            return self.study_id == study_id
        return self.advertises("task", task) and self.advertises("optimizer", optimizer)

    def knows(self, kind: PluginKind, name: str) -> bool:
        """Whether this worker said it can or cannot run `name` (no need to probe it)."""
        listed = self.advertises(kind, name)
        return listed or any(u.kind == kind and u.name == name for u in self.unable)


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
    probe: Annotated[list[Capability], Field(max_length=MAX_PROBES)] = Field(
        default_factory=list,
        description="When empty: what studies waiting for trainings need that this worker "
        "neither advertised nor listed as unable; see whether it can, then ask again.",
    )


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


Fraction = Annotated[FiniteFloat, Field(ge=0.0, le=1.0)]
ShareName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_DIAGNOSTICS_NAME)]


class DiagnosticsRecord(BaseModel):
    """AvaGrad-family mechanism diagnostics of one training seed, read just before `step`."""

    model_config = ConfigDict(extra="forbid")

    step: Annotated[int, Field(ge=1, le=1_000_000)]
    gamma: Annotated[FiniteFloat, Field(ge=0.0)] = Field(
        description="γ = 1/sqrt(Σq⁻²/d) that step computes from v (official AvaGrad: used by "
        "the step after it; DelayedAdam: what γ would be, it uses 1)."
    )
    zero_fraction: Fraction = Field(description="Fraction of elements with v exactly 0.")
    shares: Annotated[dict[ShareName, Fraction], Field(max_length=MAX_DIAGNOSTICS_NAMES)] = Field(
        description="Each named parameter tensor's (or layer's) share of Σq⁻²."
    )


SeedRecords = Annotated[list[DiagnosticsRecord], Field(max_length=MAX_DIAGNOSTICS_RECORDS)]


class TrialResult(BaseModel):
    """A finished training: validation objective (error %), test metric, loss curve.

    With several seeds per trial, `seed_values` (and optionally `seed_test_values`,
    `seed_diverged`) carry each seed's result, so grids keep their training noise; then
    `value` is their mean and `diverged` says whether any seed diverged. A diverged seed's
    value is the task's chance level (`chance`). Results without them count as one seed.
    """

    model_config = ConfigDict(extra="forbid")

    token: Token
    value: FiniteFloat = Field(description="The objective (validation error); finite.")
    test_value: FiniteFloat | None = None
    curve: Annotated[list[FiniteFloat], Field(max_length=MAX_CURVE)] = Field(default_factory=list)
    diverged: bool = Field(
        default=False, description="A diverged run is a result: value at chance level."
    )
    seconds: Annotated[FiniteFloat, Field(ge=0)] = 0.0
    seed_values: SeedList[FiniteFloat] | None = Field(
        default=None, description="Each seed's objective, chance-clipped; `value` is their mean."
    )
    seed_test_values: SeedList[FiniteFloat] | None = None
    seed_diverged: SeedList[bool] | None = None
    chance: FiniteFloat | None = Field(
        default=None, description="The task's chance level: the value of a diverged seed."
    )
    seed_diagnostics: SeedList[SeedRecords] | None = Field(
        default=None,
        description="Each seed's mechanism diagnostics (fidelity.diagnostics_every; AvaGrad "
        "family only), in step order.",
    )
    numerics: ShortText | None = Field(
        default=None,
        description="Which precision and determinism policy trained this, e.g. 'cuda fp32, "
        "tf32 off, cudnn deterministic, torch 2.13.0'.",
    )

    @model_validator(mode="after")
    def _check_seeds(self) -> TrialResult:
        values = self.seed_values
        if values is None:
            if any(getattr(self, name) is not None for name in _PER_SEED):
                raise ValueError(f"{', '.join(_PER_SEED)} need seed_values")
            return self
        _check_diagnostics_size(self.seed_diagnostics)
        for name in _PER_SEED:
            other = getattr(self, name)
            if other is not None and len(other) != len(values):
                raise ValueError(
                    f"{name} has {len(other)} entries and seed_values {len(values)}: "
                    "send one per seed"
                )
        _check_mean("value", self.value, "seed_values", values)
        if self.seed_test_values is not None and self.test_value is not None:
            _check_mean("test_value", self.test_value, "seed_test_values", self.seed_test_values)
        if self.seed_diverged is None:
            if self.diverged:
                raise ValueError("a diverged result with seed_values needs seed_diverged")
        elif any(self.seed_diverged) != self.diverged:
            raise ValueError("diverged must be true exactly when some seed in seed_diverged is")
        return self


_PER_SEED = ("seed_test_values", "seed_diverged", "seed_diagnostics")


def _check_diagnostics_size(seeds: list[list[DiagnosticsRecord]] | None) -> None:
    values = sum(
        len(r.shares) + DIAGNOSTICS_RECORD_COST for records in seeds or () for r in records
    )
    if values > MAX_DIAGNOSTICS_VALUES:
        raise ValueError(
            f"seed_diagnostics carry {values} values (at most {MAX_DIAGNOSTICS_VALUES}): "
            "send fewer records"
        )


def _check_mean(name: str, value: float, seeds_name: str, seeds: list[float]) -> None:
    mean = math.fsum(v / len(seeds) for v in seeds)  # never overflows, as a sum may
    if not math.isclose(value, mean, rel_tol=1e-9, abs_tol=1e-9):
        raise ValueError(f"{name} must be the mean of {seeds_name} ({mean!r}), got {value!r}")


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


class ResultItem(BaseModel):
    """One result of a batch: the trial and what its training produced."""

    model_config = ConfigDict(extra="forbid")

    trial_id: DbId
    result: TrialResult


class ResultBatch(BaseModel):
    """Results of several trials in one POST (each item is answered on its own)."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ResultItem], Field(min_length=1, max_length=MAX_LEASE_TRIALS)]


class ResultItemAck(BaseModel):
    """What became of one item of a batch: `status` 200 (recorded, `state` says as what),
    404 (the trial is gone), 409 (its lease is not live) or 422 (the item is invalid)."""

    trial_id: int | None = Field(description="The item's trial (None: the item had none).")
    status: int
    state: str | None = None
    detail: Any = Field(default=None, description="Why it was refused (a 422: the issues).")


class ResultBatchAck(BaseModel):
    """One answer per item of a batch, in the batch's order."""

    items: list[ResultItemAck]


class RawResultBatch(BaseModel):
    """How the server reads a `ResultBatch`: each item checked on its own, so that an invalid
    item refuses only itself (422 in its ack), never the batch."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_LEASE_TRIALS)] = (
        Field(description="`ResultItem`s: {trial_id, result: TrialResult}.")
    )
