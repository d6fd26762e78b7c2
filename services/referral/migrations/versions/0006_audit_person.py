"""Audit rows name the person who acted, when a person signed in at the gateway.

Older rows keep a null there; their hashes stay valid because the hash covers the person only
when there is one.

Revision ID: 0006_audit_person
Revises: 0005_referral_report_dimensions
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_audit_person"
down_revision: str | None = "0005_referral_report_dimensions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add audit_event.actor_person_id."""
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("actor_person_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    """Drop audit_event.actor_person_id."""
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("actor_person_id")
