"""Cost-sharing rules: which partner pays which share of which service category of an agreement.

- cost_share: per agreement version and service category, a payer organisation and either a
  percentage (of what the fixed amounts leave) or a fixed amount, an optional cap, the ISO 4217
  currency and what is covered in several languages. Amounts and percentages are exact decimal
  text with four decimals (SQLite has no exact NUMERIC); nothing here is personal data.

Revision ID: 0007_cost_shares
Revises: 0006_programme_registry
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0007_cost_shares"
down_revision: str | None = "0006_programme_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(column: str, target: str) -> sa.Column[sa.Uuid]:
    return sa.Column(
        column,
        sa.Uuid(),
        sa.ForeignKey(f"{target}.id", ondelete="CASCADE", name=f"fk_cost_share_{column}_{target}"),
        nullable=False,
    )


def upgrade() -> None:
    """Create the cost_share table."""
    op.create_table(
        "cost_share",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("agreement_id", "agreement"),
        sa.Column("service_category", sa.String(40), nullable=False),
        _fk("payer_org_id", "organisation"),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("percentage", sa.String(40)),
        sa.Column("fixed_amount", sa.String(40)),
        sa.Column("cap", sa.String(40)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("covers", JSONType, nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_cost_share_agreement_category", "cost_share", ["agreement_id", "service_category"]
    )
    op.create_index("ix_cost_share_payer_org_id", "cost_share", ["payer_org_id"])


def downgrade() -> None:
    """Drop the cost_share table."""
    op.drop_index("ix_cost_share_payer_org_id", "cost_share")
    op.drop_index("ix_cost_share_agreement_category", "cost_share")
    op.drop_table("cost_share")
