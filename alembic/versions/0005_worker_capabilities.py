"""What each worker can run: workers.capabilities.

The tasks and optimizers a worker advertised with its last lease request (or the one study
a user's own training loop leases from), and what it tried and could not import; NULL for
workers seen before this revision. A study no live worker can run says so on its page.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column to workers."""
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("capabilities", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("capabilities")
