"""How a training's numbers were computed: trials.numerics.

The precision and determinism policy a worker reports with a result (device, dtype, TF32,
cuDNN determinism, torch version), so results trained under different numerics can be told
apart; NULL from workers that do not say, and for every trial stored before this revision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column to trials."""
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("numerics", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Drop it (SQLite's table rebuild keeps AUTOINCREMENT)."""
    with op.batch_alter_table("trials", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("numerics")
