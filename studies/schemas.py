"""What the API returns: studies, trials, experiments, workers (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from studies.protocol import DiagnosticsRecord
from studies.specs import ExperimentSpec, StudySpec


class BestTrial(BaseModel):
    """The lowest value a study has found, and where."""

    trial_id: int
    value: float
    alpha: float
    eps: float


class StudyOut(BaseModel):
    """A study, its progress and best value."""

    id: int
    name: str
    state: str
    task: str
    optimizer: str
    tuner: str
    budget: int = Field(description="Most distinct trainings (same as trainings_budget).")
    trainings_budget: int = Field(description="Most distinct trainings the study may run.")
    trainings_proposed: int = Field(description="Distinct points the tuner sent to training.")
    trainings_done: int = Field(description="Of those, how many are complete, diverged or failed.")
    trainings_in_flight: int = Field(description="Of those, how many are queued or training.")
    repeats: int = Field(
        description="Tuner asks for a point already trained or training: answered from that "
        "training, for free (not trainings)."
    )
    in_flight_limit: int | None = Field(
        default=None,
        description="Most proposals unfinished at once (the tuner's feedback limit); "
        "None: unlimited.",
    )
    progress: float = Field(description="trainings_done / trainings_budget, in [0, 1].")
    counts: dict[str, int] = Field(description="Trainings by state (repeats left out).")
    best: BestTrial | None = None
    stop_reason: str | None = None
    waiting: str | None = Field(
        default=None,
        description="Why a running study's trainings are not being trained: no worker seen "
        "lately can run its task or optimizer (and what those that tried said); None "
        "otherwise.",
    )
    experiment_id: int | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    spec: StudySpec


class TrialOut(BaseModel):
    """A trial: its point, state, lease and result."""

    id: int
    study_id: int
    number: int = Field(description="Order of the tuner's asks, repeats included.")
    training: int | None = Field(
        default=None, description="Order among the study's trainings, 0, 1, …; None: a repeat."
    )
    state: str
    alpha: float
    eps: float
    i_alpha: int | None = None
    j_eps: int | None = None
    value: float | None = Field(default=None, description="The mean over the trial's seeds.")
    test_value: float | None = None
    diverged: bool = False
    seed_values: list[float] | None = Field(
        default=None, description="Each seed's value (a diverged seed at chance); None: one seed."
    )
    seed_test_values: list[float] | None = None
    seed_diverged: list[bool] | None = None
    chance: float | None = Field(default=None, description="The task's chance level.")
    attempts: int = 0
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    progress_done: int | None = None
    progress_total: int | None = None
    source_trial_id: int | None = Field(
        default=None, description="On a repeat: the training whose result it takes."
    )
    repeats: int = Field(default=0, description="Times the tuner asked again for this point.")
    seconds: float | None = None
    numerics: str | None = Field(
        default=None, description="The precision and determinism policy that trained it."
    )
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    curve: list[float] | None = None


class TrialPage(BaseModel):
    """Trials after a number, in order; pass `next_after` as `after` for the next page.
    Trainings only, unless repeats were asked for."""

    trials: list[TrialOut]
    next_after: int | None = None


class TrainingDiagnostics(BaseModel):
    """One training's mechanism diagnostics: its point and each seed's records."""

    trial_id: int
    number: int
    training: int | None = None
    state: str
    alpha: float
    eps: float
    seeds: list[list[DiagnosticsRecord]] = Field(
        description="Per training seed (fidelity.seed, seed + 1, …), records in step order."
    )


class DiagnosticsPage(BaseModel):
    """Trainings with diagnostics, in number order; pass `next_after` as `after` for more."""

    trainings: list[TrainingDiagnostics]
    next_after: int | None = None


class ExperimentOut(BaseModel):
    """An experiment: its grid studies and their progress."""

    id: int
    name: str
    state: str
    task: str
    progress: float
    studies: list[StudyOut]
    report_ready: bool
    created_at: datetime
    spec: ExperimentSpec


class ExperimentReport(BaseModel):
    """The separability report of an experiment and its complete grids (grid-table format)."""

    experiment_id: int
    computed_at: datetime
    metrics: dict[str, Any]
    tables: list[dict[str, Any]]


class WorkerOut(BaseModel):
    """A worker, when it was last seen and what it did."""

    id: str
    name: str | None = None
    host: str | None = None
    device: str | None = None
    first_seen: datetime
    last_seen: datetime
    leases: int
    trials_leased: int
    active: int = Field(description="Trials it holds under a live lease now.")
    complete: int
    failed: int


class Health(BaseModel):
    """Liveness and database reachability."""

    status: str
    database: str
