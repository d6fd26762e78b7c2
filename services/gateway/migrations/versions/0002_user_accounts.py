"""People sign in: user accounts, authorization codes, refresh-token families, account events.

Revision ID: 0002_user_accounts
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import UTCDateTime

revision: str = "0002_user_accounts"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    """Create the account, code, refresh-token and account-event tables."""
    op.create_table(
        "user_account",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("roles", JSON, nullable=False),
        sa.Column("email_index", sa.String(64), nullable=False),
        sa.Column("email_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("display_name_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("totp_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("password_changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_account"),
        sa.UniqueConstraint("email_index", name="uq_user_account_email_index"),
    )
    op.create_index("ix_user_account_org_id", "user_account", ["org_id"])
    op.create_table(
        "authorization_code",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("family_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_authorization_code"),
    )
    op.create_index("ix_authorization_code_user_id", "authorization_code", ["user_id"])
    op.create_index("ix_authorization_code_expires_at", "authorization_code", ["expires_at"])
    op.create_table(
        "refresh_family",
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("family_id", name="pk_refresh_family"),
    )
    op.create_index("ix_refresh_family_user_id", "refresh_family", ["user_id"])
    op.create_table(
        "refresh_token",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_token"),
    )
    op.create_index("ix_refresh_token_family_id", "refresh_token", ["family_id"])
    op.create_table(
        "user_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor_client_id", sa.String(128), nullable=False),
        sa.Column("actor_org_id", sa.String(64), nullable=False),
        sa.Column("actor_person_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_event"),
    )
    op.create_index("ix_user_event_user_id", "user_event", ["user_id"])


def downgrade() -> None:
    """Drop the people tables."""
    op.drop_table("user_event")
    op.drop_table("refresh_token")
    op.drop_table("refresh_family")
    op.drop_table("authorization_code")
    op.drop_table("user_account")
