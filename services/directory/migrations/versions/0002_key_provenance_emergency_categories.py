"""Who registered each key, the organisation's event feed, and agreements' emergency categories.

- organisation_key: `added_by_*` (null on older keys: nobody recorded it), `added_by_admin`
  (false on older keys), `confirmed_at`; a key an admin registers for another organisation is
  `pending` until that organisation confirms it.
- organisation_event: what was done to an organisation's keys, by whom, when (kid and
  thumbprint only, never key material).
- agreement.emergency_categories: the categories an emergency override may disclose. Existing
  rows get the default set intersected with their permitted categories, so every row keeps the
  rule "a subset of the permitted categories".

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: the application's default may change later, this revision's data may not.
DEFAULT_EMERGENCY_CATEGORIES = ("identity.basic", "contact", "health.mental")


def upgrade() -> None:
    """Add key provenance, the event table and emergency categories (backfilled)."""
    with op.batch_alter_table("organisation_key") as table:
        table.add_column(sa.Column("added_by_client_id", sa.String(200)))
        table.add_column(sa.Column("added_by_org_id", sa.String(64)))
        table.add_column(sa.Column("added_by_role", sa.String(40)))
        table.add_column(
            sa.Column("added_by_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("confirmed_at", UTCDateTime()))
    op.create_table(
        "organisation_event",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "organisation_id",
            sa.Uuid(),
            sa.ForeignKey(
                "organisation.id",
                ondelete="CASCADE",
                name="fk_organisation_event_organisation_id_organisation",
            ),
            nullable=False,
        ),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("kid", sa.String(200)),
        sa.Column("thumbprint", sa.String(64)),
        sa.Column("actor_client_id", sa.String(200), nullable=False),
        sa.Column("actor_org_id", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(40), nullable=False),
        sa.Column("by_admin", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_organisation_event_organisation_id", "organisation_event", ["organisation_id"]
    )
    default = sa.text(f"'{json.dumps(list(DEFAULT_EMERGENCY_CATEGORIES))}'")
    with op.batch_alter_table("agreement") as table:
        table.add_column(
            sa.Column("emergency_categories", JSONType, nullable=False, server_default=default)
        )
    _backfill_emergency_categories()


def _backfill_emergency_categories() -> None:
    agreement = sa.table(
        "agreement",
        sa.column("id", sa.Uuid()),
        sa.column("permitted_categories", JSONType),
        sa.column("emergency_categories", JSONType),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(agreement.c.id, agreement.c.permitted_categories))
    for row_id, permitted in rows.all():
        kept = [c for c in DEFAULT_EMERGENCY_CATEGORIES if c in (permitted or [])]
        if len(kept) != len(DEFAULT_EMERGENCY_CATEGORIES):
            connection.execute(
                agreement.update().where(agreement.c.id == row_id).values(emergency_categories=kept)
            )


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table("agreement") as table:
        table.drop_column("emergency_categories")
    op.drop_index("ix_organisation_event_organisation_id", table_name="organisation_event")
    op.drop_table("organisation_event")
    with op.batch_alter_table("organisation_key") as table:
        for column in (
            "confirmed_at",
            "added_by_admin",
            "added_by_role",
            "added_by_org_id",
            "added_by_client_id",
        ):
            table.drop_column(column)
