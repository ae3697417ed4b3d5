"""Trainings apart from repeat asks, and each study's limit on proposals in flight.

`trials.training` numbers a study's trainings 0, 1, … in the order they were proposed
(NULL on a repeat ask answered from another trial), so progress, the best-so-far axis and
costs count distinct trainings. `studies.max_in_flight` is the tuner's limit on unfinished
proposals (NULL: none), which leasing reads without rebuilding the tuner.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NUMBER_TRAININGS = """
UPDATE trials SET training = (
    SELECT COUNT(*) FROM trials AS earlier
    WHERE earlier.study_id = trials.study_id
      AND earlier.source_trial_id IS NULL
      AND earlier.number < trials.number
)
WHERE source_trial_id IS NULL
"""


def upgrade() -> None:
    """Add both columns and fill them in for the studies already stored."""
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("training", sa.Integer(), nullable=True))
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text(_NUMBER_TRAININGS))
    _fill_limits(conn)


def _fill_limits(conn: sa.Connection) -> None:
    from service.tuning import in_flight

    rows = conn.execute(sa.text("SELECT id, spec, seed FROM studies WHERE tuner != 'grid'")).all()
    for row in rows:
        try:
            limit = in_flight(row.spec, row.seed).limit
        except ValueError:
            continue  # a spec this version cannot read keeps no limit
        conn.execute(
            sa.text("UPDATE studies SET max_in_flight = :limit WHERE id = :id"),
            {"limit": limit, "id": row.id},
        )


def downgrade() -> None:
    """Drop both columns (SQLite's table rebuilds keep AUTOINCREMENT)."""
    with op.batch_alter_table("studies", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("max_in_flight")
    with op.batch_alter_table("trials", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("training")
