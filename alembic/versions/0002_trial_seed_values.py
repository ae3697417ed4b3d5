"""Per-seed results of a trial: seed_values, seed_test_values, seed_diverged, chance.

A trial trained over several seeds kept only their mean; the grid tables of an
experiment (format avatune-grid/2) need each seed's value. Existing trials keep NULL
(read as one seed: their `value`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("seed_values", "seed_test_values", "seed_diverged")


def upgrade() -> None:
    """Add the nullable per-seed columns to trials."""
    with op.batch_alter_table("trials") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.JSON(), nullable=True))
        batch.add_column(sa.Column("chance", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop them again (the per-seed values are lost; each trial's mean stays).

    SQLite rebuilds the table for this: it must keep AUTOINCREMENT (ids never reused).
    """
    with op.batch_alter_table("trials", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("chance")
        for name in reversed(COLUMNS):
            batch.drop_column(name)
