"""Outbox leases: a claimed notification is reserved until `leased_until`, then retried.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the lease column to the notification outbox."""
    with op.batch_alter_table("outbox_event") as batch:
        batch.add_column(sa.Column("leased_until", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the lease column."""
    with op.batch_alter_table("outbox_event") as batch:
        batch.drop_column("leased_until")
