"""Initial schema of the referral service: referrals (ciphertext + metadata), notes,
idempotency records, open referrals, the hash-chained audit trail and the notification outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the referral tables."""
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_event",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor_client_id", sa.String(length=128), nullable=False),
        sa.Column("actor_org_id", sa.String(length=64), nullable=False),
        sa.Column("actor_roles", JSONType, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_event_hash")),
        sa.UniqueConstraint("id", name=op.f("uq_audit_event_id")),
    )
    op.create_index(
        op.f("ix_audit_event_referral_id"), "audit_event", ["referral_id"], unique=False
    )
    op.create_table(
        "open_referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_org_id", sa.Uuid(), nullable=False),
        sa.Column("coordinator_org_id", sa.Uuid(), nullable=False),
        sa.Column("coordinator_webhook_url", sa.Text(), nullable=True),
        sa.Column("sender_webhook_url", sa.Text(), nullable=True),
        sa.Column("service_category", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("admin_area", sa.String(length=10), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("requested_categories", JSONType, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assigned_service_id", sa.Uuid(), nullable=True),
        sa.Column("assigned_org_id", sa.Uuid(), nullable=True),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_referral")),
    )
    op.create_index(
        op.f("ix_open_referral_coordinator_org_id"),
        "open_referral",
        ["coordinator_org_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_open_referral_sender_org_id"), "open_referral", ["sender_org_id"], unique=False
    )
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("target_org_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("dead_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
    )
    op.create_index(
        op.f("ix_outbox_event_next_attempt_at"), "outbox_event", ["next_attempt_at"], unique=False
    )
    op.create_index(
        op.f("ix_outbox_event_referral_id"), "outbox_event", ["referral_id"], unique=False
    )
    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_org_id", sa.Uuid(), nullable=False),
        sa.Column("sender_client_id", sa.String(length=128), nullable=False),
        sa.Column("recipient_org_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("service_category", sa.String(length=64), nullable=False),
        sa.Column("programme", sa.String(length=128), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("subject_digest", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_reason", sa.String(length=64), nullable=True),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("consent_ids", JSONType, nullable=False),
        sa.Column("override_id", sa.String(length=64), nullable=True),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("shared_categories", JSONType, nullable=False),
        sa.Column("withheld", JSONType, nullable=False),
        sa.Column("first_contact_missing", JSONType, nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("recipient_kids", JSONType, nullable=False),
        sa.Column("recipient_webhook_url", sa.Text(), nullable=True),
        sa.Column("sender_webhook_url", sa.Text(), nullable=True),
        sa.Column("focal_point_id", sa.String(length=64), nullable=True),
        sa.Column("backup_focal_point_id", sa.String(length=64), nullable=True),
        sa.Column("acknowledge_by", UTCDateTime(timezone=True), nullable=True),
        sa.Column("respond_by", UTCDateTime(timezone=True), nullable=True),
        sa.Column("overdue_since", UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("feedback_score", sa.Integer(), nullable=True),
        sa.Column("feedback", JSONType, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
    )
    op.create_index(
        "ix_referral_open_subject",
        "referral",
        ["subject_digest", "service_id", "recipient_org_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_referral_recipient_org_id"), "referral", ["recipient_org_id"], unique=False
    )
    op.create_index(op.f("ix_referral_sender_org_id"), "referral", ["sender_org_id"], unique=False)
    op.create_index(op.f("ix_referral_status"), "referral", ["status"], unique=False)
    op.create_index(
        op.f("ix_referral_subject_digest"), "referral", ["subject_digest"], unique=False
    )
    op.create_index(op.f("ix_referral_updated_at"), "referral", ["updated_at"], unique=False)
    op.create_table(
        "idempotency_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_org_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
        sa.UniqueConstraint(
            "sender_org_id", "key", name=op.f("uq_idempotency_record_sender_org_id")
        ),
    )
    op.create_table(
        "referral_note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("author_org_id", sa.Uuid(), nullable=False),
        sa.Column("author_client_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_referral_note_referral_id_referral")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_note")),
    )
    op.create_index(
        op.f("ix_referral_note_referral_id"), "referral_note", ["referral_id"], unique=False
    )


def downgrade() -> None:
    """Drop the referral tables."""
    op.drop_index(op.f("ix_referral_note_referral_id"), table_name="referral_note")
    op.drop_table("referral_note")
    op.drop_table("idempotency_record")
    op.drop_index(op.f("ix_referral_updated_at"), table_name="referral")
    op.drop_index(op.f("ix_referral_subject_digest"), table_name="referral")
    op.drop_index(op.f("ix_referral_status"), table_name="referral")
    op.drop_index(op.f("ix_referral_sender_org_id"), table_name="referral")
    op.drop_index(op.f("ix_referral_recipient_org_id"), table_name="referral")
    op.drop_index("ix_referral_open_subject", table_name="referral")
    op.drop_table("referral")
    op.drop_index(op.f("ix_outbox_event_referral_id"), table_name="outbox_event")
    op.drop_index(op.f("ix_outbox_event_next_attempt_at"), table_name="outbox_event")
    op.drop_table("outbox_event")
    op.drop_index(op.f("ix_open_referral_sender_org_id"), table_name="open_referral")
    op.drop_index(op.f("ix_open_referral_coordinator_org_id"), table_name="open_referral")
    op.drop_table("open_referral")
    op.drop_index(op.f("ix_audit_event_referral_id"), table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_table("audit_chain_head")
