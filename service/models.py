"""SQLAlchemy models of the service: studies, trials, workers, experiments.

Ids are never reused (SQLite AUTOINCREMENT), so a deleted study's id stays dead.

The schema changes only through alembic migrations (`alembic/versions/`); a test checks
that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC timestamp, stored naive (so SQLite and PostgreSQL compare alike), read aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, UTC, aware."""
    return datetime.now(UTC)


class StudyState(StrEnum):
    """Lifecycle of a study."""

    running = "running"
    paused = "paused"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


class TrialState(StrEnum):
    """Lifecycle of a trial: queued → leased → complete | diverged | failed.

    `waiting`: the tuner asked again for a point still being trained; the trial takes the
    result of that original. `cancelled`: its study was cancelled before it ran.
    """

    queued = "queued"
    leased = "leased"
    waiting = "waiting"
    complete = "complete"
    diverged = "diverged"
    failed = "failed"
    cancelled = "cancelled"


PENDING_STATES = (TrialState.queued, TrialState.leased, TrialState.waiting)
VALUED_STATES = (TrialState.complete, TrialState.diverged)
#: A trial's per-seed result columns; a trial that copies another's result copies these.
SEED_COLUMNS = ("seed_values", "seed_test_values", "seed_diverged", "chance")


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (for migrations)."""

    metadata = MetaData(naming_convention=NAMING)


class Experiment(Base):
    """Full grids for several optimizers on one task, and the report computed from them."""

    __tablename__ = "experiments"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=StudyState.running)
    task: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    report_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Study(Base):
    """One optimizer on one task, tuned by one tuner under a budget of trainings."""

    __tablename__ = "studies"
    __table_args__ = (Index(None, "state", "tuner"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=StudyState.running)
    task: Mapped[str] = mapped_column(String(64))
    optimizer: Mapped[str] = mapped_column(String(64))
    tuner: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    batch_key: Mapped[str] = mapped_column(String(64))
    budget: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    n_trained: Mapped[int] = mapped_column(Integer, default=0)
    n_asks: Mapped[int] = mapped_column(Integer, default=0)
    #: The tuner's limit on unfinished proposals (studies.tuners.inflight); None: no limit.
    max_in_flight: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_trial_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Trial(Base):
    """One (α, ε) point of a study and its training: lease, progress, result.

    A trial is a training, or a repeat ask (`source_trial_id` set, `training` None) that
    takes the result of the training of the same point. `value` is the mean over the
    trial's seeds; `seed_values`, `seed_test_values` and
    `seed_diverged` keep each seed's result (NULL from workers that send none);
    `seed_diagnostics` each seed's mechanism records when the fidelity asked for them
    (kept on the training only: a repeat ask does not copy them).
    """

    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number"),
        Index(None, "study_id", "state"),
        Index("ix_trials_queue", "state", "batch_key", "id"),
        Index("ix_trials_lease_expiry", "state", "lease_expires_at"),
        Index("ix_trials_state_id", "state", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    #: The study's trainings in proposal order, 0, 1, …; None on a repeat ask.
    training: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    alpha: Mapped[float] = mapped_column(Float)
    eps: Mapped[float] = mapped_column(Float)
    i_alpha: Mapped[int | None] = mapped_column(Integer, nullable=True)
    j_eps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    tuner_attrs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    batch_key: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    test_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    diverged: Mapped[bool] = mapped_column(Boolean, default=False)
    curve: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    # per training seed (lists of equal length), when the worker sent them
    seed_values: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    seed_test_values: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    seed_diverged: Mapped[list[bool] | None] = mapped_column(JSON, nullable=True)
    chance: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: None is SQL NULL here (not JSON null), so "has diagnostics" is an IS NOT NULL query.
    seed_diagnostics: Mapped[list[list[dict[str, Any]]] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The precision and determinism policy the worker trained with, when it said.
    numerics: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    leased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    progress_done: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    progress_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    source_trial_id: Mapped[int | None] = mapped_column(
        ForeignKey("trials.id", ondelete="SET NULL"), nullable=True, index=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Worker(Base):
    """A worker process that has asked for trials."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    leases: Mapped[int] = mapped_column(Integer, default=0)
    trials_leased: Mapped[int] = mapped_column(Integer, default=0)
    #: What its last lease request said it can and cannot run (`studies.protocol.Capabilities`).
    capabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
