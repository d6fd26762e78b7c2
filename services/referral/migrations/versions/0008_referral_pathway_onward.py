"""Referrals keep their pathway and the links of onward referrals.

- pathway: 'international' on every existing referral (host office to provider);
- based_on_id: on an onward referral, the referral it passes on (indexed);
- onward_referral_id, onward_org_id, onward_service_id, onward_service_category: on a referral
  passed on, the new referral and to whom it went. Ids and a category only: no personal data.

Revision ID: 0008_referral_pathway_onward
Revises: 0007_plans_start_after
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_referral_pathway_onward"
down_revision: str | None = "0007_plans_start_after"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONWARD = ("onward_referral_id", "onward_org_id", "onward_service_id")


def upgrade() -> None:
    """Add the pathway and the onward links."""
    with op.batch_alter_table("referral") as batch:
        batch.add_column(
            sa.Column("pathway", sa.String(16), nullable=False, server_default="international")
        )
        batch.add_column(sa.Column("based_on_id", sa.Uuid(), nullable=True))
        for column in ONWARD:
            batch.add_column(sa.Column(column, sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("onward_service_category", sa.String(64), nullable=True))
    op.create_index("ix_referral_based_on_id", "referral", ["based_on_id"])


def downgrade() -> None:
    """Drop the onward links and the pathway."""
    op.drop_index("ix_referral_based_on_id", table_name="referral")
    with op.batch_alter_table("referral") as batch:
        batch.drop_column("onward_service_category")
        for column in reversed(ONWARD):
            batch.drop_column(column)
        batch.drop_column("based_on_id")
        batch.drop_column("pathway")
