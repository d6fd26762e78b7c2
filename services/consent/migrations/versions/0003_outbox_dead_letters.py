"""Outbox dead letters: a withdrawal notice that exhausted its attempts waits for a replay.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the dead-letter timestamp to the withdrawal outbox."""
    with op.batch_alter_table("outbox_event") as batch:
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the dead-letter timestamp."""
    with op.batch_alter_table("outbox_event") as batch:
        batch.drop_column("dead_at")
