"""Per-referral costs and their split between payers (cost-sharing).

- referral_cost: one row per referral with a cost: currency (ISO 4217), estimated and actual
  amounts and the part no rule pays, as integers of the currency's minor unit.
- cost_share_line: per referral and cost-share rule of the directory, the payer, its amount
  and its settlement status (pledged, invoiced, paid).
Organisations and amounts only; nothing here is personal data.

Revision ID: 0006_referral_costs
Revises: 0005_referral_report_dimensions
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision: str = "0006_referral_costs"
down_revision: str | None = "0005_referral_report_dimensions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _referral(table: str, **column: bool) -> sa.Column[sa.Uuid]:
    return sa.Column(
        "referral_id",
        sa.Uuid(),
        sa.ForeignKey("referral.id", name=f"fk_{table}_referral_id_referral"),
        nullable=False,
        **column,
    )


def upgrade() -> None:
    """Create referral_cost and cost_share_line."""
    op.create_table(
        "referral_cost",
        _referral("referral_cost", primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("estimated_minor", sa.BigInteger()),
        sa.Column("actual_minor", sa.BigInteger()),
        sa.Column("uncovered_minor", sa.BigInteger(), nullable=False),
        sa.Column("estimated_at", UTCDateTime()),
        sa.Column("actual_at", UTCDateTime()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "cost_share_line",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _referral("cost_share_line"),
        sa.Column("cost_share_id", sa.Uuid(), nullable=False),
        sa.Column("payer_org_id", sa.Uuid(), nullable=False),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("invoiced_at", UTCDateTime()),
        sa.Column("paid_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("referral_id", "cost_share_id", name="uq_cost_share_line_referral_id"),
    )
    op.create_index("ix_cost_share_line_referral_id", "cost_share_line", ["referral_id"])
    op.create_index("ix_cost_share_line_payer_org_id", "cost_share_line", ["payer_org_id"])


def downgrade() -> None:
    """Drop the cost tables."""
    op.drop_index("ix_cost_share_line_payer_org_id", "cost_share_line")
    op.drop_index("ix_cost_share_line_referral_id", "cost_share_line")
    op.drop_table("cost_share_line")
    op.drop_table("referral_cost")
