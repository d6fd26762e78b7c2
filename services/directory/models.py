"""Tables of the directory service (SQLAlchemy 2.0)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.clock import utcnow
from shared.db import DecimalText, JSONType, UTCDateTime, service_metadata


class Base(DeclarativeBase):
    """Declarative base of the directory service's own database."""

    metadata = service_metadata()


class Versioned:
    """Row counter behind the ETag, and timestamps."""

    row_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Organisation(Versioned, Base):
    """A partner: host office, provider, coordinating body, auditor or steward."""

    __tablename__ = "organisation"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[dict[str, str]] = mapped_column(JSONType)
    description: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    stakeholder_type: Mapped[str] = mapped_column(String(40))
    engagement_level: Mapped[str] = mapped_column(String(40))
    host_office: Mapped[bool] = mapped_column(Boolean, default=False)
    country: Mapped[str] = mapped_column(String(2), index=True)
    admin_areas: Mapped[list[str]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    website: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(320))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    coordination: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    coordinator_org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), index=True
    )


class OrganisationKey(Base):
    """A public encryption key (JWK) of an organisation; private parts are never stored."""

    __tablename__ = "organisation_key"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    kid: Mapped[str] = mapped_column(String(200), unique=True)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="active")
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who registered it; null on keys registered before this was recorded (revision 0002).
    added_by_client_id: Mapped[str | None] = mapped_column(String(200))
    added_by_org_id: Mapped[str | None] = mapped_column(String(64))
    added_by_role: Mapped[str | None] = mapped_column(String(40))
    added_by_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrganisationEvent(Base):
    """Something done to an organisation's keys, for the organisation to see and auditors to check.

    No key material beyond the public kid and thumbprint, and no personal data.
    """

    __tablename__ = "organisation_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(40))
    kid: Mapped[str | None] = mapped_column(String(200))
    thumbprint: Mapped[str | None] = mapped_column(String(64))
    actor_client_id: Mapped[str] = mapped_column(String(200))
    actor_org_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(40))
    by_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Service(Versioned, Base):
    """A service an organisation offers; search columns are derived and kept in step."""

    __tablename__ = "service"
    __table_args__ = (Index("ix_service_country_category", "country", "category", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[dict[str, str]] = mapped_column(JSONType)
    description: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    eligibility: Mapped[str | None] = mapped_column(Text)
    fees: Mapped[str | None] = mapped_column(Text)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    capacity: Mapped[int | None] = mapped_column(Integer)
    accepting_referrals: Mapped[bool] = mapped_column(Boolean, default=True)
    country: Mapped[str] = mapped_column(String(2))
    admin_areas: Mapped[list[str]] = mapped_column(JSONType, default=list)
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # Normalised copies for search (lower case, no diacritics), identical on both backends.
    search_name: Mapped[str] = mapped_column(Text, default="")
    search_body: Mapped[str] = mapped_column(Text, default="")
    languages_key: Mapped[str] = mapped_column(String(400), default=",")
    areas_key: Mapped[str] = mapped_column(String(2000), default=",")


class FocalPoint(Versioned, Base):
    """The person or desk that answers referrals for an organisation or one of its services."""

    __tablename__ = "focal_point"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    service_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(200))
    contact_channels: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    response_time_hours: Mapped[int] = mapped_column(Integer)
    backup_focal_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("focal_point.id", ondelete="SET NULL")
    )
    first_contact_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)


class Programme(Versioned, Base):
    """A reintegration programme or donor framework that agreements and referrals belong to."""

    __tablename__ = "programme"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[dict[str, str]] = mapped_column(JSONType)
    # Null only on programmes made from an agreement's free text by migration 0004.
    donor: Mapped[str | None] = mapped_column(String(200))
    # Empty only on migrated programmes: their countries were never recorded, so not checked.
    host_countries: Mapped[list[str]] = mapped_column(JSONType, default=list)
    origin_countries: Mapped[list[str]] = mapped_column(JSONType, default=list)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Agreement(Versioned, Base):
    """One version of an SOP/MoU: which data a sender may share with a provider, and why."""

    __tablename__ = "agreement"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    series_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    version: Mapped[int] = mapped_column(Integer)
    sender_org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE")
    )
    provider_org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    service_categories: Mapped[list[str]] = mapped_column(JSONType)
    permitted_categories: Mapped[list[str]] = mapped_column(JSONType)
    purpose: Mapped[str] = mapped_column(String(32))
    retention_days: Mapped[int] = mapped_column(Integer)
    emergency_override_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    sealed_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # international, national or local (revision 0007); domestic ones bind two partners of one
    # country of origin.
    pathway: Mapped[str] = mapped_column(String(16), default="international")
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The code of a registered programme (null: no programme).
    programme: Mapped[str | None] = mapped_column(String(200), index=True)
    document_sha256: Mapped[str | None] = mapped_column(String(64))


class CostShare(Versioned, Base):
    """Who pays which share of one service category under an agreement version.

    Organisations and amounts only; `covers` describes services, never a person.
    """

    __tablename__ = "cost_share"
    __table_args__ = (
        Index("ix_cost_share_agreement_category", "agreement_id", "service_category"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreement.id", ondelete="CASCADE"))
    service_category: Mapped[str] = mapped_column(String(40))
    payer_org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    basis: Mapped[str] = mapped_column(String(16))
    percentage: Mapped[Decimal | None] = mapped_column(DecimalText(4))
    fixed_amount: Mapped[Decimal | None] = mapped_column(DecimalText(4))
    cap: Mapped[Decimal | None] = mapped_column(DecimalText(4))
    currency: Mapped[str] = mapped_column(String(3))
    covers: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)


class ChangeRecord(Base):
    """A change to partnership records: the directory's audit row and the source of its feed.

    Ids and codes only; never personal data.
    """

    __tablename__ = "change_record"
    __table_args__ = (Index("ix_change_record_country_id", "country", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    country: Mapped[str] = mapped_column(String(2))
    actor_client_id: Mapped[str] = mapped_column(String(200))
    actor_org_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SituationReport(Base):
    """One version of a partner's report on an area: security, labour market, disruptions."""

    __tablename__ = "situation_report"
    __table_args__ = (Index("ix_situation_report_country_id", "country", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    series_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    version: Mapped[int] = mapped_column(Integer)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    country: Mapped[str] = mapped_column(String(2))
    admin_area: Mapped[str | None] = mapped_column(String(10))
    topics: Mapped[list[str]] = mapped_column(JSONType)
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceIntake(Base):
    """What a provider says about a service's intake now: closed, waiting time, places left."""

    __tablename__ = "service_intake"

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(24))
    waiting_days: Mapped[int | None] = mapped_column(Integer)
    places_left: Mapped[int | None] = mapped_column(Integer)
    reopens_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EngagementChange(Base):
    """One change of an organisation's engagement level, why, and what is planned next."""

    __tablename__ = "engagement_change"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    from_level: Mapped[str | None] = mapped_column(String(40))
    to_level: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    planned_activities: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    actor_client_id: Mapped[str] = mapped_column(String(200))
    actor_org_id: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PartnerContact(Base):
    """A contact or joint decision with an organisation: a meeting, an MoU signed, a review."""

    __tablename__ = "partner_contact"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    occurred_on: Mapped[date] = mapped_column(Date)
    counterpart_org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL")
    )
    summary: Mapped[str] = mapped_column(Text)
    decisions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    recorded_by_org_id: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CapacityPlan(Versioned, Base):
    """A capacity-building record: the assessment, the plan, its activities and indicators."""

    __tablename__ = "capacity_plan"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    assessed_on: Mapped[date] = mapped_column(Date)
    areas: Mapped[list[str]] = mapped_column(JSONType)
    gaps: Mapped[list[str]] = mapped_column(JSONType, default=list)
    objectives: Mapped[str] = mapped_column(Text, default="")
    activities: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    indicators: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)


class Opportunity(Versioned, Base):
    """A job, apprenticeship or training course an employer or training provider publishes."""

    __tablename__ = "opportunity"
    __table_args__ = (Index("ix_opportunity_country_kind", "country", "kind", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    service_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[dict[str, str]] = mapped_column(JSONType)
    description: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    country: Mapped[str] = mapped_column(String(2))
    admin_area: Mapped[str | None] = mapped_column(String(10))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    places_left: Mapped[int] = mapped_column(Integer)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    skills: Mapped[list[str]] = mapped_column(JSONType)
