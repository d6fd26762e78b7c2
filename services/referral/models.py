"""Tables of the referral service: ciphertext and non-personal metadata only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import JSONType, UTCDateTime, service_metadata
from shared.outbox import OutboxColumns


class Base(DeclarativeBase):
    """Declarative base of the referral service's own database."""

    metadata = service_metadata()


class Referral(Base):
    """One referral: who sent what to whom, on which basis, and where it stands."""

    __tablename__ = "referral"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    sender_org_id: Mapped[uuid.UUID] = mapped_column(index=True)
    sender_client_id: Mapped[str] = mapped_column(String(128))
    recipient_org_id: Mapped[uuid.UUID] = mapped_column(index=True)
    service_id: Mapped[uuid.UUID]
    service_category: Mapped[str] = mapped_column(String(64))
    programme: Mapped[str | None] = mapped_column(String(128), index=True)
    # Where the referral goes from and to, and who funds it, for reports (revision 0004;
    # null on older referrals). Not personal data: countries, a region, a donor's name.
    donor: Mapped[str | None] = mapped_column(String(200))
    host_country: Mapped[str | None] = mapped_column(String(2), index=True)
    origin_country: Mapped[str | None] = mapped_column(String(2))
    origin_area: Mapped[str | None] = mapped_column(String(10))
    purpose: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    # Keyed hash of the host office's pseudonym: finds a subject's referrals, reveals nothing.
    subject_digest: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(16))
    consent_ids: Mapped[list[str]] = mapped_column(JSONType)
    override_id: Mapped[str | None] = mapped_column(String(64))
    agreement_id: Mapped[uuid.UUID]
    agreement_version: Mapped[int] = mapped_column(Integer)
    shared_categories: Mapped[list[str]] = mapped_column(JSONType)
    withheld: Mapped[dict[str, str]] = mapped_column(JSONType)
    first_contact_missing: Mapped[list[str]] = mapped_column(JSONType)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # "server": refex minimised and encrypted the case file; "sealed": the sender's system did,
    # one JWE per section, and refex never held the plaintext.
    payload_mode: Mapped[str] = mapped_column(String(8), default="server")
    # Every key the payload is encrypted to; sender_kids says which are the sender's (null on
    # referrals made before migration 0003).
    recipient_kids: Mapped[list[str]] = mapped_column(JSONType)
    sender_kids: Mapped[list[str] | None] = mapped_column(JSONType)
    recipient_webhook_url: Mapped[str | None] = mapped_column(Text)
    sender_webhook_url: Mapped[str | None] = mapped_column(Text)
    focal_point_id: Mapped[str | None] = mapped_column(String(64))
    backup_focal_point_id: Mapped[str | None] = mapped_column(String(64))
    acknowledge_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    feedback_score: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_referral_open_subject", "subject_digest", "service_id", "recipient_org_id"),
    )


class ReferralNote(Base):
    """A follow-up note or document, encrypted to both parties."""

    __tablename__ = "referral_note"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral.id"), index=True)
    author_org_id: Mapped[uuid.UUID]
    author_client_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """The first answer to a create request, replayed for the same key and body."""

    __tablename__ = "idempotency_record"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    sender_org_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(128))
    request_digest: Mapped[str] = mapped_column(String(64))
    # No foreign key: the key is claimed before the referral row exists (see service._claim_key).
    referral_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("sender_org_id", "key"),)


class AuditEvent(Base):
    """A hash-chained record of every change and access; never personal data."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(unique=True)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor_client_id: Mapped[str] = mapped_column(String(128))
    actor_org_id: Mapped[str] = mapped_column(String(64))
    actor_roles: Mapped[list[str]] = mapped_column(JSONType)
    # The person signed in at the gateway when a person acted (the workspace), else null.
    actor_person_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class OutboxEvent(OutboxColumns, Base):
    """A notification to a partner's webhook, written in the same transaction as the change."""

    __tablename__ = "outbox_event"

    referral_id: Mapped[uuid.UUID] = mapped_column(index=True)
    target_org_id: Mapped[uuid.UUID]
    webhook_url: Mapped[str | None] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_outbox_event_next_attempt_at", "next_attempt_at"),)


class ChainHead(Base):
    """The latest audit hash, one row, locked while appending so the chain never forks."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class OpenReferral(Base):
    """A request for a service category in an area, without personal data, for a coordinator."""

    __tablename__ = "open_referral"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    sender_org_id: Mapped[uuid.UUID] = mapped_column(index=True)
    coordinator_org_id: Mapped[uuid.UUID] = mapped_column(index=True)
    coordinator_webhook_url: Mapped[str | None] = mapped_column(Text)
    sender_webhook_url: Mapped[str | None] = mapped_column(Text)
    service_category: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    admin_area: Mapped[str | None] = mapped_column(String(10))
    purpose: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    requested_categories: Mapped[list[str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    assigned_service_id: Mapped[uuid.UUID | None]
    assigned_org_id: Mapped[uuid.UUID | None]
    referral_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
