"""Referrals keep what reports cut by: donor, host country, origin country and area.

Older referrals keep nulls there (their directory answer did not carry them). Indexes on
programme, host_country and created_at serve the list filters and the report's period range.

Revision ID: 0005_referral_report_dimensions
Revises: 0004_referral_payload_mode
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_referral_report_dimensions"
down_revision: str | None = "0004_referral_payload_mode"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add donor, host_country, origin_country and origin_area, and the report indexes."""
    with op.batch_alter_table("referral") as batch:
        batch.add_column(sa.Column("donor", sa.String(200), nullable=True))
        batch.add_column(sa.Column("host_country", sa.String(2), nullable=True))
        batch.add_column(sa.Column("origin_country", sa.String(2), nullable=True))
        batch.add_column(sa.Column("origin_area", sa.String(10), nullable=True))
    op.create_index("ix_referral_programme", "referral", ["programme"])
    op.create_index("ix_referral_host_country", "referral", ["host_country"])
    op.create_index("ix_referral_created_at", "referral", ["created_at"])


def downgrade() -> None:
    """Drop the report columns and indexes."""
    op.drop_index("ix_referral_created_at", "referral")
    op.drop_index("ix_referral_host_country", "referral")
    op.drop_index("ix_referral_programme", "referral")
    with op.batch_alter_table("referral") as batch:
        for column in ("origin_area", "origin_country", "host_country", "donor"):
            batch.drop_column(column)
