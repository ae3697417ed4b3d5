"""Mechanism diagnostics of a training: trials.seed_diagnostics.

Each seed's records (γ, fraction of v = 0, shares of Σq⁻² by tensor) when the study's
fidelity asked for them (`diagnostics_every`); NULL otherwise, and for every trial stored
before this revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column to trials."""
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("seed_diagnostics", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop it (the diagnostics are lost; SQLite's table rebuild keeps AUTOINCREMENT)."""
    with op.batch_alter_table("trials", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("seed_diagnostics")
