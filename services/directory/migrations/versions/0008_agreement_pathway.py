"""Agreements name their pathway: international, or national/local between origin partners.

Every existing agreement binds a host office (or any host office) to a provider: international.

Revision ID: 0008_agreement_pathway
Revises: 0007_cost_shares
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_agreement_pathway"
down_revision: str | None = "0007_cost_shares"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add agreement.pathway ('international' on every existing agreement)."""
    with op.batch_alter_table("agreement") as batch:
        batch.add_column(
            sa.Column("pathway", sa.String(16), nullable=False, server_default="international")
        )


def downgrade() -> None:
    """Drop agreement.pathway."""
    with op.batch_alter_table("agreement") as batch:
        batch.drop_column("pathway")
