"""Queries of the directory service; no HTTP and no business rules here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import (
    Agreement,
    Base,
    FocalPoint,
    Organisation,
    OrganisationEvent,
    OrganisationKey,
    Programme,
    Service,
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
