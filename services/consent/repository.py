"""Queries of the consent service; no HTTP and no business rules."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.consent.models import Consent, Disclosure, EmergencyOverride


async def get_consent(*, session: AsyncSession, consent_id: uuid.UUID) -> Consent | None:
    """Return a consent by id."""
    return await session.get(Consent, consent_id)


async def matching_consents(
    *,
    session: AsyncSession,
    subject_ref: str,
    purpose: str,
    sender_org: str | None,
    recipient_org: str,
    service_category: str,
    country: str | None,
    now: datetime,
) -> Sequence[Consent]:
    """Return consents in force now that name this recipient (or its category and country)."""
    grantee = Consent.grantee_org_id == recipient_org
    if country is not None:
        grantee = or_(
            grantee,
            and_(
                Consent.grantee_service_category == service_category,
                Consent.grantee_country == country,
            ),
        )
    query = select(Consent).where(
        Consent.subject_ref == subject_ref,
        Consent.purpose == purpose,
        Consent.withdrawn_at.is_(None),
        Consent.valid_from <= now,
        Consent.valid_until > now,
        grantee,
    )
    if sender_org is not None:
        query = query.where(Consent.recorded_by_org == sender_org)
    return (await session.scalars(query.order_by(Consent.recorded_at, Consent.id))).all()


async def active_override(
    *,
    session: AsyncSession,
    subject_ref: str,
    recipient_org: str,
    service_category: str,
    sender_org: str | None,
    now: datetime,
) -> EmergencyOverride | None:
    """Return the newest attested, unexpired override for this subject and recipient."""
    query = select(EmergencyOverride).where(
        EmergencyOverride.subject_ref == subject_ref,
        EmergencyOverride.recipient_org_id == recipient_org,
        EmergencyOverride.service_category == service_category,
        EmergencyOverride.status == "active",
        EmergencyOverride.expires_at > now,
    )
    if sender_org is not None:
        query = query.where(EmergencyOverride.requesting_org == sender_org)
    query = query.order_by(EmergencyOverride.attested_at.desc()).limit(1)
    return await session.scalar(query)


async def disclosure_by_referral(
    *, session: AsyncSession, referral_id: uuid.UUID
) -> Disclosure | None:
    """Return the disclosure recorded for a referral, if any."""
    return await session.scalar(select(Disclosure).where(Disclosure.referral_id == referral_id))


async def consents_by_ids(
    *, session: AsyncSession, consent_ids: list[uuid.UUID]
) -> Sequence[Consent]:
    """Return the consents with these ids (unknown ids are simply missing)."""
    if not consent_ids:
        return []
    rows = await session.scalars(select(Consent).where(Consent.id.in_(consent_ids)))
    return rows.all()


async def list_disclosures(
    *,
    session: AsyncSession,
    subject_ref: str,
    sender_org: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Disclosure]:
    """Return a subject's disclosures, oldest first, optionally only one sender's."""
    query = select(Disclosure).where(Disclosure.subject_ref == subject_ref)
    if sender_org is not None:
        query = query.where(Disclosure.sender_org_id == sender_org)
    if after is not None:
        query = query.where(tuple_(Disclosure.recorded_at, Disclosure.id) > after)
    query = query.order_by(Disclosure.recorded_at, Disclosure.id).limit(limit)
    return (await session.scalars(query)).all()


async def get_override(
    *, session: AsyncSession, override_id: uuid.UUID
) -> EmergencyOverride | None:
    """Return an override by id."""
    return await session.get(EmergencyOverride, override_id)


async def list_overrides(
    *,
    session: AsyncSession,
    requesting_org: str | None,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[EmergencyOverride]:
    """Return overrides, newest request first."""
    query = select(EmergencyOverride)
    if requesting_org is not None:
        query = query.where(EmergencyOverride.requesting_org == requesting_org)
    if status is not None:
        query = query.where(EmergencyOverride.status == status)
    if after is not None:
        query = query.where(tuple_(EmergencyOverride.requested_at, EmergencyOverride.id) < after)
    order = (EmergencyOverride.requested_at.desc(), EmergencyOverride.id.desc())
    return (await session.scalars(query.order_by(*order).limit(limit))).all()


async def due_expiries(
    *, session: AsyncSession, now: datetime, limit: int, pending_ttl: timedelta
) -> tuple[Sequence[Consent], Sequence[EmergencyOverride]]:
    """Return consents and overrides (active or pending) whose time ran out, expiry unrecorded."""
    consents = await session.scalars(
        select(Consent)
        .where(
            Consent.valid_until <= now,
            Consent.withdrawn_at.is_(None),
            Consent.expiry_recorded.is_(False),
        )
        .limit(limit)
    )
    overrides = await session.scalars(
        select(EmergencyOverride)
        .where(
            or_(
                and_(EmergencyOverride.status == "active", EmergencyOverride.expires_at <= now),
                and_(
                    EmergencyOverride.status == "pending",
                    EmergencyOverride.requested_at <= now - pending_ttl,
                ),
            )
        )
        .limit(limit)
    )
    return consents.all(), overrides.all()


async def attested_overrides(
    *, session: AsyncSession, subject_ref: str, recipient_org: str, service_category: str
) -> Sequence[EmergencyOverride]:
    """Return every override ever attested for this subject, recipient and service category."""
    query = select(EmergencyOverride).where(
        EmergencyOverride.subject_ref == subject_ref,
        EmergencyOverride.recipient_org_id == recipient_org,
        EmergencyOverride.service_category == service_category,
        EmergencyOverride.attested_at.is_not(None),
    )
    return (await session.scalars(query)).all()
