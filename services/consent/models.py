"""Tables of the consent service (SQLAlchemy 2.0)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import JSONType, UTCDateTime, service_metadata
from shared.outbox import OutboxColumns


class Base(DeclarativeBase):
    """Declarative base of the consent service's own database."""

    metadata = service_metadata()


class Consent(Base):
    """A returnee's consent to pass named data categories to a grantee for a purpose."""

    __tablename__ = "consent"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    subject_ref: Mapped[str] = mapped_column(String(128), index=True)
    grantor: Mapped[str] = mapped_column(String(16))
    grantee_org_id: Mapped[str | None] = mapped_column(String(64))
    grantee_service_category: Mapped[str | None] = mapped_column(String(64))
    grantee_country: Mapped[str | None] = mapped_column(String(2))
    purpose: Mapped[str] = mapped_column(String(16))
    categories: Mapped[list[str]] = mapped_column(JSONType)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence_method: Mapped[str] = mapped_column(String(32))
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(35))
    recorded_by_org: Mapped[str] = mapped_column(String(64), index=True)
    recorded_by_client: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ledger_index: Mapped[int] = mapped_column(BigInteger)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawal_reason: Mapped[str | None] = mapped_column(String(32))
    withdrawn_by_client: Mapped[str | None] = mapped_column(String(128))
    expiry_recorded: Mapped[bool] = mapped_column(default=False)


class EmergencyOverride(Base):
    """A life-at-risk exception: minimal categories without consent, attested by a clinician."""

    __tablename__ = "emergency_override"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    subject_ref: Mapped[str] = mapped_column(String(128), index=True)
    requesting_org: Mapped[str] = mapped_column(String(64), index=True)
    requested_by_client: Mapped[str] = mapped_column(String(128))
    recipient_org_id: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    service_category: Mapped[str] = mapped_column(String(64))
    categories: Mapped[list[str]] = mapped_column(JSONType)
    request_statement_sha256: Mapped[str] = mapped_column(String(64))
    request_statement_length: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attested_by_client: Mapped[str | None] = mapped_column(String(128))
    attested_by_org: Mapped[str | None] = mapped_column(String(64))
    registration_number: Mapped[str | None] = mapped_column(String(64))
    attestation_statement_sha256: Mapped[str | None] = mapped_column(String(64))
    attestation_statement_length: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_client: Mapped[str | None] = mapped_column(String(128))
    end_reason: Mapped[str | None] = mapped_column(String(32))


class Disclosure(Base):
    """A record that a referral passed data categories to a recipient, and on which basis."""

    __tablename__ = "disclosure"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    subject_ref: Mapped[str] = mapped_column(String(128), index=True)
    sender_org_id: Mapped[str] = mapped_column(String(64))
    recipient_org_id: Mapped[str] = mapped_column(String(64))
    categories: Mapped[list[str]] = mapped_column(JSONType)
    basis: Mapped[str] = mapped_column(String(16))
    consent_ids: Mapped[list[str]] = mapped_column(JSONType)
    override_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    recorded_by_client: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ledger_index: Mapped[int] = mapped_column(BigInteger)


class OutboxEvent(OutboxColumns, Base):
    """A withdrawal notice waiting to reach the referral service (written with the withdrawal)."""

    __tablename__ = "outbox_event"

    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_outbox_event_pending", "delivered_at", "next_attempt_at"),)


class LedgerState(Base):
    """The one row every append locks: tree size and its right edge (compact range)."""

    __tablename__ = "ledger_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerNode(Base):
    """A complete subtree hash; level 0 holds the leaf hashes."""

    __tablename__ = "ledger_node"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerEntry(Base):
    """An event's record: its canonical body (purgeable) and metadata, apart from the hashes."""

    __tablename__ = "ledger_entry"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_type: Mapped[str] = mapped_column(String(64))
    appended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retain_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TreeHead(Base):
    """A signed statement of the ledger's size and root at a moment."""

    __tablename__ = "tree_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
