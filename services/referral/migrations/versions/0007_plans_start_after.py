"""The returnee's path: referrals due after arrival, reintegration plans, stalled follow-ups.

`referral.start_after` holds when a referral sent before departure becomes due (null: at once).
`open_referral.stalled_at` marks that the coordinator was told its routed referral stalled.
`reintegration_plan` and `plan_item` group one returnee's referrals across phases; they hold
a keyed digest of the pseudonym, categories, dates and statuses, never personal data.

Revision ID: 0007_plans_start_after
Revises: 0006_referral_costs
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision: str = "0007_plans_start_after"
down_revision: str | None = "0006_referral_costs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add start_after and stalled_at, and create the plan tables."""
    with op.batch_alter_table("referral") as batch:
        batch.add_column(sa.Column("start_after", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("open_referral") as batch:
        batch.add_column(sa.Column("stalled_at", UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "reintegration_plan",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("subject_digest", sa.String(length=64), nullable=False),
        sa.Column("programme", sa.String(length=128), nullable=True),
        sa.Column("expected_return_date", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reintegration_plan")),
    )
    for column in ("owner_org_id", "subject_digest", "updated_at"):
        op.create_index(
            op.f(f"ix_reintegration_plan_{column}"), "reintegration_plan", [column], unique=False
        )
    op.create_table(
        "plan_item",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("service_category", sa.String(length=64), nullable=False),
        sa.Column("planned_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["reintegration_plan.id"],
            name=op.f("fk_plan_item_plan_id_reintegration_plan"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_plan_item_referral_id_referral")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_item")),
    )
    op.create_index(op.f("ix_plan_item_plan_id"), "plan_item", ["plan_id"], unique=False)
    # Unique: a referral is one step of one plan at most (NULLs never collide).
    op.create_index(op.f("ix_plan_item_referral_id"), "plan_item", ["referral_id"], unique=True)


def downgrade() -> None:
    """Drop the plan tables, stalled_at and start_after."""
    for column in ("referral_id", "plan_id"):
        op.drop_index(op.f(f"ix_plan_item_{column}"), "plan_item")
    op.drop_table("plan_item")
    for column in ("updated_at", "subject_digest", "owner_org_id"):
        op.drop_index(op.f(f"ix_reintegration_plan_{column}"), "reintegration_plan")
    op.drop_table("reintegration_plan")
    with op.batch_alter_table("open_referral") as batch:
        batch.drop_column("stalled_at")
    with op.batch_alter_table("referral") as batch:
        batch.drop_column("start_after")
