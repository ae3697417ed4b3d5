"""Initial schema: experiments, workers, studies, trials, and the indexes of the hot queries.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    """A naive-UTC timestamp column (service.models.UTCDateTime)."""
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        _time("report_at", nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("host", sa.String(length=200), nullable=True),
        sa.Column("device", sa.String(length=200), nullable=True),
        _time("first_seen"),
        _time("last_seen"),
        sa.Column("leases", sa.Integer(), nullable=False),
        sa.Column("trials_leased", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("optimizer", sa.String(length=64), nullable=False),
        sa.Column("tuner", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("batch_key", sa.String(length=64), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("n_trained", sa.Integer(), nullable=False),
        sa.Column("n_asks", sa.Integer(), nullable=False),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.Column("best_trial_id", sa.Integer(), nullable=True),
        sa.Column("stop_reason", sa.String(length=200), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_studies_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_studies_experiment_id"), "studies", ["experiment_id"])
    op.create_index(op.f("ix_studies_state_tuner"), "studies", ["state", "tuner"])
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("eps", sa.Float(), nullable=False),
        sa.Column("i_alpha", sa.Integer(), nullable=True),
        sa.Column("j_eps", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tuner_attrs", sa.JSON(), nullable=True),
        sa.Column("batch_key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("test_value", sa.Float(), nullable=True),
        sa.Column("diverged", sa.Boolean(), nullable=False),
        sa.Column("curve", sa.JSON(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        _time("lease_expires_at", nullable=True),
        _time("leased_at", nullable=True),
        _time("heartbeat_at", nullable=True),
        sa.Column("progress_done", sa.BigInteger(), nullable=True),
        sa.Column("progress_total", sa.BigInteger(), nullable=True),
        sa.Column("source_trial_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _time("created_at"),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["source_trial_id"],
            ["trials.id"],
            name=op.f("fk_trials_source_trial_id_trials"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name=op.f("fk_trials_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trials")),
        sa.UniqueConstraint("study_id", "number", name=op.f("uq_trials_study_id_number")),
        sqlite_autoincrement=True,
    )
    # The hot queries: the queue (oldest queued trial; then those of its batch key), expired
    # leases, a study's trials by state, a lease's trials, a point's waiting duplicates.
    op.create_index("ix_trials_queue", "trials", ["state", "batch_key", "id"])
    op.create_index("ix_trials_state_id", "trials", ["state", "id"])
    op.create_index("ix_trials_lease_expiry", "trials", ["state", "lease_expires_at"])
    op.create_index(op.f("ix_trials_study_id_state"), "trials", ["study_id", "state"])
    op.create_index(op.f("ix_trials_lease_token"), "trials", ["lease_token"])
    op.create_index(op.f("ix_trials_source_trial_id"), "trials", ["source_trial_id"])
    op.create_index(op.f("ix_trials_worker_id"), "trials", ["worker_id"])


def downgrade() -> None:
    """Drop everything."""
    op.drop_table("trials")
    op.drop_table("studies")
    op.drop_table("workers")
    op.drop_table("experiments")
