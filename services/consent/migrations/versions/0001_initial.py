"""Initial schema of the consent service: consents, overrides, disclosures, outbox, ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the consent service and the ledger's state row."""
    op.create_table(
        "consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_ref", sa.String(128), nullable=False),
        sa.Column("grantor", sa.String(16), nullable=False),
        sa.Column("grantee_org_id", sa.String(64), nullable=True),
        sa.Column("grantee_service_category", sa.String(64), nullable=True),
        sa.Column("grantee_country", sa.String(2), nullable=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("evidence_method", sa.String(32), nullable=False),
        sa.Column("evidence_sha256", sa.String(64), nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("recorded_by_org", sa.String(64), nullable=False),
        sa.Column("recorded_by_client", sa.String(128), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.Column("withdrawal_reason", sa.String(32), nullable=True),
        sa.Column("withdrawn_by_client", sa.String(128), nullable=True),
        sa.Column("expiry_recorded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(op.f("ix_consent_subject_ref"), "consent", ["subject_ref"])
    op.create_index(op.f("ix_consent_recorded_by_org"), "consent", ["recorded_by_org"])
    op.create_table(
        "emergency_override",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_ref", sa.String(128), nullable=False),
        sa.Column("requesting_org", sa.String(64), nullable=False),
        sa.Column("requested_by_client", sa.String(128), nullable=False),
        sa.Column("recipient_org_id", sa.String(64), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("service_category", sa.String(64), nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("request_statement_sha256", sa.String(64), nullable=False),
        sa.Column("request_statement_length", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("attested_at", TS, nullable=True),
        sa.Column("attested_by_client", sa.String(128), nullable=True),
        sa.Column("attested_by_org", sa.String(64), nullable=True),
        sa.Column("registration_number", sa.String(64), nullable=True),
        sa.Column("attestation_statement_sha256", sa.String(64), nullable=True),
        sa.Column("attestation_statement_length", sa.Integer(), nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ended_by_client", sa.String(128), nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_override")),
    )
    op.create_index(
        op.f("ix_emergency_override_subject_ref"), "emergency_override", ["subject_ref"]
    )
    op.create_index(
        op.f("ix_emergency_override_requesting_org"), "emergency_override", ["requesting_org"]
    )
    op.create_index(op.f("ix_emergency_override_status"), "emergency_override", ["status"])
    op.create_table(
        "disclosure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("subject_ref", sa.String(128), nullable=False),
        sa.Column("sender_org_id", sa.String(64), nullable=False),
        sa.Column("recipient_org_id", sa.String(64), nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("consent_ids", JSON, nullable=False),
        sa.Column("override_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by_client", sa.String(128), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosure")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_disclosure_referral_id")),
    )
    op.create_index(op.f("ix_disclosure_subject_ref"), "disclosure", ["subject_ref"])
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("leased_until", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
    )
    op.create_index("ix_outbox_event_pending", "outbox_event", ["delivered_at", "next_attempt_at"])
    state = op.create_table(
        "ledger_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_state")),
    )
    op.bulk_insert(state, [{"id": 1, "size": 0, "frontier": b""}])
    op.create_table(
        "ledger_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "position", name=op.f("pk_ledger_node")),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("appended_at", TS, nullable=False),
        sa.Column("retain_until", TS, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("purged_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("index", name=op.f("pk_ledger_entry")),
    )
    op.create_index(op.f("ix_ledger_entry_retain_until"), "ledger_entry", ["retain_until"])
    op.create_table(
        "tree_head",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tree_head")),
    )
    op.create_index(op.f("ix_tree_head_tree_size"), "tree_head", ["tree_size"])


def downgrade() -> None:
    """Drop every table of the consent service."""
    for table in (
        "tree_head",
        "ledger_entry",
        "ledger_node",
        "ledger_state",
        "outbox_event",
        "disclosure",
        "emergency_override",
        "consent",
    ):
        op.drop_table(table)
