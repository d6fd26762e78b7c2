"""Agreements can require sealed referrals: the sender's own system encrypts every section.

Existing agreements keep server-side encryption allowed (`sealed_required` false).

Revision ID: 0004_agreement_sealed_required
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_agreement_sealed_required"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add agreement.sealed_required (false on every existing agreement)."""
    with op.batch_alter_table("agreement") as batch:
        batch.add_column(
            sa.Column("sealed_required", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Drop agreement.sealed_required."""
    with op.batch_alter_table("agreement") as batch:
        batch.drop_column("sealed_required")
