"""Referrals remember which of their JWE recipient keys are the sender's, so each referral can
list the key ids it was encrypted to with the party that holds each.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add referral.sender_kids (null on referrals made before: their key owners are unknown)."""
    with op.batch_alter_table("referral") as batch:
        batch.add_column(sa.Column("sender_kids", JSONType, nullable=True))


def downgrade() -> None:
    """Drop referral.sender_kids."""
    with op.batch_alter_table("referral") as batch:
        batch.drop_column("sender_kids")
