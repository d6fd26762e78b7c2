"""Queries of the directory service; no HTTP and no business rules here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import (
    Agreement,
    Base,
    CapacityPlan,
    ChangeRecord,
    CostShare,
    EngagementChange,
    FocalPoint,
    Opportunity,
    Organisation,
    OrganisationEvent,
    OrganisationKey,
    PartnerContact,
    Programme,
    Service,
    ServiceIntake,
    SituationReport,
)

Row = TypeVar("Row", bound=Base)


async def get(session: AsyncSession, model: type[Row], row_id: uuid.UUID) -> Row | None:
    """Return the row of `model` with this id, or None."""
    return await session.get(model, row_id)


async def page(
    session: AsyncSession,
    model: type[Row],
    *,
    after: uuid.UUID | None,
    limit: int,
    filters: Sequence[Any] = (),
) -> list[Row]:
    """Return up to `limit` rows ordered by id, after the cursor id."""
    id_column: Any = model.__table__.c.id
    query = select(model).where(*filters).order_by(id_column).limit(limit)
    if after is not None:
        query = query.where(id_column > after)
    return list((await session.scalars(query)).all())


async def organisation_page(
    session: AsyncSession,
    *,
    after: uuid.UUID | None,
    limit: int,
    country: str | None = None,
    stakeholder_type: str | None = None,
    coordinator_org_id: uuid.UUID | None = None,
) -> list[Organisation]:
    """Return a page of organisations, optionally of one country, type or coordinator."""
    filters = []
    if country:
        filters.append(Organisation.country == country)
    if stakeholder_type:
        filters.append(Organisation.stakeholder_type == stakeholder_type)
    if coordinator_org_id is not None:
        filters.append(Organisation.coordinator_org_id == coordinator_org_id)
    return await page(session, Organisation, after=after, limit=limit, filters=filters)


async def focal_point_page(
    session: AsyncSession,
    *,
    after: uuid.UUID | None,
    limit: int,
    organisation_id: uuid.UUID | None = None,
) -> list[FocalPoint]:
    """Return a page of focal points, optionally of one organisation."""
    filters = [FocalPoint.organisation_id == organisation_id] if organisation_id else []
    return await page(session, FocalPoint, after=after, limit=limit, filters=filters)


async def event_page(
    session: AsyncSession, *, org_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[OrganisationEvent]:
    """Return a page of an organisation's key events, oldest first."""
    filters = [OrganisationEvent.organisation_id == org_id]
    return await page(session, OrganisationEvent, after=after, limit=limit, filters=filters)


async def agreement_page(
    session: AsyncSession,
    *,
    after: uuid.UUID | None,
    limit: int,
    provider_org_id: uuid.UUID | None = None,
    sender_org_id: uuid.UUID | None = None,
    party: tuple[uuid.UUID, bool] | None = None,
) -> list[Agreement]:
    """Return a page of agreement versions, optionally of one provider, sender or party.

    `party` is an organisation id and whether it is a host office: a host office is also a
    party to the agreements open to any host office.
    """
    filters: list[Any] = []
    if provider_org_id:
        filters.append(Agreement.provider_org_id == provider_org_id)
    if sender_org_id:
        filters.append(Agreement.sender_org_id == sender_org_id)
    if party is not None:
        org_id, host_office = party
        named = or_(Agreement.provider_org_id == org_id, Agreement.sender_org_id == org_id)
        filters.append(or_(named, Agreement.sender_org_id.is_(None)) if host_office else named)
    return await page(session, Agreement, after=after, limit=limit, filters=filters)


async def organisations(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Organisation]:
    """Return the organisations with these ids, by id."""
    rows = await session.scalars(select(Organisation).where(Organisation.id.in_(ids)))
    return {row.id: row for row in rows}


async def valid_keys(
    session: AsyncSession, org_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Return the public JWKs of these organisations that are active and valid at `now`."""
    query = (
        select(OrganisationKey.organisation_id, OrganisationKey.jwk)
        .where(
            OrganisationKey.organisation_id.in_(org_ids),
            OrganisationKey.status == "active",
            OrganisationKey.valid_from <= now,
            or_(OrganisationKey.valid_until.is_(None), OrganisationKey.valid_until > now),
        )
        .order_by(OrganisationKey.valid_from, OrganisationKey.kid)
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {org_id: [] for org_id in org_ids}
    for org_id, jwk in await session.execute(query):
        found[org_id].append(jwk)
    return found


async def keys_of(session: AsyncSession, org_id: uuid.UUID) -> list[OrganisationKey]:
    """Return every key of an organisation, oldest first."""
    query = (
        select(OrganisationKey)
        .where(OrganisationKey.organisation_id == org_id)
        .order_by(OrganisationKey.valid_from, OrganisationKey.kid)
    )
    return list((await session.scalars(query)).all())


async def key_by_kid(session: AsyncSession, kid: str) -> OrganisationKey | None:
    """Return the key with this kid, whichever organisation owns it."""
    return await session.scalar(select(OrganisationKey).where(OrganisationKey.kid == kid))


async def focal_points_of(session: AsyncSession, org_id: uuid.UUID) -> list[FocalPoint]:
    """Return an organisation's focal points, oldest first."""
    query = select(FocalPoint).where(FocalPoint.organisation_id == org_id).order_by(FocalPoint.id)
    return list((await session.scalars(query)).all())


async def focal_points_for_services(
    session: AsyncSession, service_ids: Sequence[uuid.UUID], org_ids: Sequence[uuid.UUID]
) -> list[FocalPoint]:
    """Return the focal points dedicated to these services or general to these organisations."""
    query = (
        select(FocalPoint)
        .where(
            or_(
                FocalPoint.service_id.in_(service_ids),
                and_(FocalPoint.service_id.is_(None), FocalPoint.organisation_id.in_(org_ids)),
            )
        )
        .order_by(FocalPoint.id)
    )
    return list((await session.scalars(query)).all())


async def agreements_for_provider(
    session: AsyncSession, provider_org_id: uuid.UUID, purpose: str
) -> list[Agreement]:
    """Return every agreement version with this provider and purpose."""
    query = select(Agreement).where(
        Agreement.provider_org_id == provider_org_id, Agreement.purpose == purpose
    )
    return list((await session.scalars(query)).all())


async def agreement_series(session: AsyncSession, series_id: uuid.UUID) -> list[Agreement]:
    """Return the versions of one agreement, oldest first."""
    query = select(Agreement).where(Agreement.series_id == series_id).order_by(Agreement.version)
    return list((await session.scalars(query)).all())


async def coordinators(session: AsyncSession) -> list[Organisation]:
    """Return every organisation that coordinates an area."""
    query = (
        select(Organisation).where(Organisation.coordination.is_not(None)).order_by(Organisation.id)
    )
    rows = (await session.scalars(query)).all()
    return [row for row in rows if row.coordination]


async def service_ids_exist(session: AsyncSession, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Return which of these service ids exist."""
    return set((await session.scalars(select(Service.id).where(Service.id.in_(ids)))).all())


# Partnership tools


async def newest_page(
    session: AsyncSession,
    model: type[Row],
    *,
    before: uuid.UUID | None,
    limit: int,
    filters: Sequence[Any] = (),
) -> list[Row]:
    """Return up to `limit` rows newest first (ids are UUIDv7), before the cursor id."""
    id_column: Any = model.__table__.c.id
    query = select(model).where(*filters).order_by(id_column.desc()).limit(limit)
    if before is not None:
        query = query.where(id_column < before)
    return list((await session.scalars(query)).all())


async def party_countries(session: AsyncSession, org_id: uuid.UUID, host_office: bool) -> set[str]:
    """Return the countries of the providers of every agreement this organisation is party to."""
    named = or_(Agreement.provider_org_id == org_id, Agreement.sender_org_id == org_id)
    party = or_(named, Agreement.sender_org_id.is_(None)) if host_office else named
    query = (
        select(Organisation.country)
        .join(Agreement, Agreement.provider_org_id == Organisation.id)
        .where(party)
        .distinct()
    )
    return set((await session.scalars(query)).all())


async def situation_page(
    session: AsyncSession,
    *,
    countries: set[str] | None,
    country: str | None,
    topic: str | None,
    before: uuid.UUID | None,
    limit: int,
) -> list[SituationReport]:
    """Return situation reports newest first, of the visible countries (None: every country)."""
    filters: list[Any] = []
    if countries is not None:
        filters.append(SituationReport.country.in_(sorted(countries)))
    if country:
        filters.append(SituationReport.country == country)
    rows = await newest_page(
        session,
        SituationReport,
        before=before,
        limit=limit * 4 if topic else limit,
        filters=filters,
    )
    # Topics are a short JSON list; filtering them in Python keeps one query for both backends.
    return [row for row in rows if topic is None or topic in row.topics][:limit]


async def latest_versions(
    session: AsyncSession, series_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Return the latest version of each of these report series."""
    query = (
        select(SituationReport.series_id, func.max(SituationReport.version))
        .where(SituationReport.series_id.in_(series_ids))
        .group_by(SituationReport.series_id)
    )
    return {row[0]: int(row[1]) for row in await session.execute(query)}


async def report_series(session: AsyncSession, series_id: uuid.UUID) -> list[SituationReport]:
    """Return the versions of one situation report, oldest first."""
    query = (
        select(SituationReport)
        .where(SituationReport.series_id == series_id)
        .order_by(SituationReport.version)
    )
    return list((await session.scalars(query)).all())


async def change_page(
    session: AsyncSession, *, countries: set[str] | None, before: uuid.UUID | None, limit: int
) -> list[ChangeRecord]:
    """Return the feed's changes newest first: every intake change, reports of these countries."""
    feed_types = ("situation_report", "service_intake")
    filters: list[Any] = [ChangeRecord.object_type.in_(feed_types)]
    if countries is not None:
        visible_report = and_(
            ChangeRecord.object_type == "situation_report",
            ChangeRecord.country.in_(sorted(countries)),
        )
        filters.append(or_(ChangeRecord.object_type == "service_intake", visible_report))
    return await newest_page(session, ChangeRecord, before=before, limit=limit, filters=filters)


async def intake_of(session: AsyncSession, service_id: uuid.UUID) -> ServiceIntake | None:
    """Return the stated intake of a service, or None when its provider never stated one."""
    return await session.get(ServiceIntake, service_id)


async def engagement_page(
    session: AsyncSession, *, org_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[EngagementChange]:
    """Return an organisation's engagement changes, newest first."""
    filters = [EngagementChange.organisation_id == org_id]
    return await newest_page(session, EngagementChange, before=before, limit=limit, filters=filters)


async def contact_page(
    session: AsyncSession, *, org_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[PartnerContact]:
    """Return an organisation's contact log, most recently recorded first."""
    filters = [PartnerContact.organisation_id == org_id]
    return await newest_page(session, PartnerContact, before=before, limit=limit, filters=filters)


async def capacity_page(
    session: AsyncSession, *, org_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[CapacityPlan]:
    """Return an organisation's capacity-building records, newest first."""
    filters = [CapacityPlan.organisation_id == org_id]
    return await newest_page(session, CapacityPlan, before=before, limit=limit, filters=filters)


async def opportunity_page(
    session: AsyncSession,
    *,
    after: uuid.UUID | None,
    limit: int,
    country: str | None,
    kind: str | None,
    organisation_id: uuid.UUID | None,
) -> list[Opportunity]:
    """Return a page of opportunities by id, optionally of one country, kind or organisation."""
    filters: list[Any] = []
    if country:
        filters.append(Opportunity.country == country)
    if kind:
        filters.append(Opportunity.kind == kind)
    if organisation_id:
        filters.append(Opportunity.organisation_id == organisation_id)
    return await page(session, Opportunity, after=after, limit=limit, filters=filters)


async def open_opportunities(
    session: AsyncSession, *, country: str, kinds: Sequence[str], today: date, cap: int
) -> list[Opportunity]:
    """Return up to `cap` opportunities of a country with places left that have not ended."""
    filters: list[Any] = [
        Opportunity.country == country,
        Opportunity.places_left > 0,
        or_(Opportunity.ends_on.is_(None), Opportunity.ends_on >= today),
    ]
    if kinds:
        filters.append(Opportunity.kind.in_(list(kinds)))
    query = select(Opportunity).where(*filters).order_by(Opportunity.id).limit(cap)
    return list((await session.scalars(query)).all())


async def by_ids(
    session: AsyncSession, model: type[Row], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Row]:
    """Return the rows of `model` with these ids, by id."""
    if not ids:
        return {}
    id_column: Any = model.__table__.c.id
    rows = await session.scalars(select(model).where(id_column.in_(list(ids))))
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


async def programme_by_code(session: AsyncSession, code: str) -> Programme | None:
    """Return the programme with this code, or None."""
    return await session.scalar(select(Programme).where(Programme.code == code))


async def programme_page(
    session: AsyncSession, *, after: uuid.UUID | None, limit: int
) -> list[Programme]:
    """Return a page of programmes by id."""
    return await page(session, Programme, after=after, limit=limit)


async def agreements_in_programme(session: AsyncSession, code: str) -> list[Agreement]:
    """Return every agreement version that belongs to the programme."""
    rows = await session.scalars(select(Agreement).where(Agreement.programme == code))
    return list(rows.all())


async def cost_shares_of(
    session: AsyncSession, agreement_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CostShare]]:
    """Return the cost-share rules of these agreements, by agreement, each list by id."""
    if not agreement_ids:
        return {}
    query = (
        select(CostShare)
        .where(CostShare.agreement_id.in_(list(agreement_ids)))
        .order_by(CostShare.id)
    )
    found: dict[uuid.UUID, list[CostShare]] = {a: [] for a in agreement_ids}
    for row in await session.scalars(query):
        found[row.agreement_id].append(row)
    return found


async def cost_share_page(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    payer_org_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[CostShare]:
    """Return a page of an agreement's cost-share rules by id, optionally of one payer only."""
    filters: list[Any] = [CostShare.agreement_id == agreement_id]
    if payer_org_id is not None:
        filters.append(CostShare.payer_org_id == payer_org_id)
    return await page(session, CostShare, after=after, limit=limit, filters=filters)


async def category_shares(
    session: AsyncSession, *, agreement_id: uuid.UUID, category: str
) -> list[CostShare]:
    """Return the rules of one service category of an agreement."""
    query = select(CostShare).where(
        CostShare.agreement_id == agreement_id, CostShare.service_category == category
    )
    return list((await session.scalars(query)).all())
