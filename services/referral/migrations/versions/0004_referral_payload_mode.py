"""Referrals say who encrypted their case file: refex (`server`) or the sender (`sealed`).

Every existing referral was encrypted by refex on receipt, so it is backfilled as `server`.

Revision ID: 0004_referral_payload_mode
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_referral_payload_mode"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add referral.payload_mode (`server` on every existing referral)."""
    with op.batch_alter_table("referral") as batch:
        batch.add_column(
            sa.Column("payload_mode", sa.String(8), nullable=False, server_default="server")
        )


def downgrade() -> None:
    """Drop referral.payload_mode."""
    with op.batch_alter_table("referral") as batch:
        batch.drop_column("payload_mode")
