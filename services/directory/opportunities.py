"""Opportunities (jobs, apprenticeships, courses) and matching a skills profile to them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory import service as directory
from services.directory.changes import record_change
from services.directory.errors import InvalidReference, NotYourOrganisation, OpportunityNotFound
from services.directory.models import Opportunity, Service
from services.directory.partner_schemas import MatchRequest, OpportunityCreate, OpportunityUpdate
from services.directory.search import distance_km
from services.directory.taxonomy import closeness
from shared.auth import Principal
from shared.clock import utcnow
from shared.i18n import Message
from shared.ids import new_id

# Matching ranks at most this many open opportunities of a country (the newest are dropped
# beyond it); a country's open vacancies in a reintegration directory stay well below.
MATCH_CANDIDATE_CAP = 2000
# Beyond this distance an opportunity loses all of its distance credit.
FAR_KM = 200.0


@dataclass(frozen=True)
class Match:
    """An opportunity, how well the profile fits it and how far it is."""

    opportunity: Opportunity
    fit: float
    matched_skills: list[str]
    distance_km: float | None


def _audit(
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    action: str,
    row: Opportunity,
) -> None:
    record_change(
        session,
        principal=principal,
        request_id=request_id,
        action=action,
        object_type="opportunity",
        object_id=row.id,
        organisation_id=row.organisation_id,
        country=row.country,
        details={"kind": row.kind, "places_left": row.places_left},
    )


async def _check_service(
    session: AsyncSession, service_id: uuid.UUID | None, org_id: uuid.UUID
) -> None:
    if service_id is None:
        return
    service = await repository.get(session, Service, service_id)
    if service is None or service.organisation_id != org_id:
        raise InvalidReference(
            Message("'service_id' names no service of this organisation; check the id.")
        )


async def create_opportunity(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    opportunity_in: OpportunityCreate,
) -> Opportunity:
    """Publish an opportunity of the caller's organisation (admins: of any)."""
    org_id = opportunity_in.organisation_id
    await directory.get_organisation(session=session, org_id=org_id)
    if not directory.may_edit_organisation(principal, org_id):
        raise NotYourOrganisation
    await _check_service(session, opportunity_in.service_id, org_id)
    location = opportunity_in.location
    row = Opportunity(
        id=new_id(),
        row_version=1,
        organisation_id=org_id,
        service_id=opportunity_in.service_id,
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
        **opportunity_in.model_dump(
            exclude={"organisation_id", "service_id", "location"}, mode="python"
        ),
    )
    session.add(row)
    _audit(session, principal, request_id, "opportunity.published", row)
    await session.flush()
    return row


async def get_opportunity(*, session: AsyncSession, opportunity_id: uuid.UUID) -> Opportunity:
    """Return an opportunity or raise OpportunityNotFound."""
    row = await repository.get(session, Opportunity, opportunity_id)
    if row is None:
        raise OpportunityNotFound
    return row


async def update_opportunity(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    opportunity_id: uuid.UUID,
    opportunity_in: OpportunityUpdate,
    if_match: str | None,
) -> Opportunity:
    """Change the places left, dates or description of your organisation's opportunity."""
    row = await get_opportunity(session=session, opportunity_id=opportunity_id)
    if not directory.may_edit_organisation(principal, row.organisation_id):
        raise NotYourOrganisation
    directory.check_if_match(row, if_match)
    changes = opportunity_in.model_dump(exclude_unset=True)
    directory.refuse_nulls(row, changes)
    starts, ends = changes.get("starts_on", row.starts_on), changes.get("ends_on", row.ends_on)
    if starts and ends and ends < starts:
        raise InvalidReference(Message("ends_on must not be before starts_on; fix one of them."))
    for key, value in changes.items():
        setattr(row, key, value)
    directory.bump(row)
    _audit(session, principal, request_id, "opportunity.updated", row)
    await session.flush()
    return row


async def list_opportunities(
    *,
    session: AsyncSession,
    country: str | None,
    kind: str | None,
    organisation_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Opportunity]:
    """Return a page of opportunities by id."""
    return await repository.opportunity_page(
        session,
        after=after,
        limit=limit,
        country=country,
        kind=kind,
        organisation_id=organisation_id,
    )


def skill_fit(profile: list[str], required: list[str]) -> tuple[float, list[str]]:
    """Return how much of `required` the profile covers (0..1) and the codes fully matched."""
    credits = [max(closeness(wanted, offered) for offered in profile) for wanted in required]
    matched = sorted(code for code in required if code in profile)
    return round(sum(credits) / len(required), 3), matched


def _distance(row: Opportunity, match_in: MatchRequest) -> float | None:
    if match_in.near is None or row.latitude is None or row.longitude is None:
        return None
    here = (match_in.near.latitude, match_in.near.longitude)
    return round(distance_km(here, (row.latitude, row.longitude)), 3)


def rank_key(match: Match) -> tuple[float, float, str]:
    """Order by fit weighted by nearness, then nearest, then id (stable across backends)."""
    distance = match.distance_km
    nearness = 1.0 if distance is None else max(0.0, 1 - distance / FAR_KM)
    score = match.fit * (0.75 + 0.25 * nearness)
    return (-score, distance if distance is not None else FAR_KM, str(match.opportunity.id))


async def match(*, session: AsyncSession, match_in: MatchRequest) -> list[Match]:
    """Rank the open opportunities of a country for a skills profile (codes only)."""
    rows = await repository.open_opportunities(
        session,
        country=match_in.country,
        kinds=match_in.kinds,
        today=utcnow().date(),
        cap=MATCH_CANDIDATE_CAP,
    )
    found = []
    for row in rows:
        if match_in.language and row.languages and match_in.language not in row.languages:
            continue
        fit, matched = skill_fit(match_in.skills, row.skills)
        if fit > 0:
            found.append(Match(row, fit, matched, _distance(row, match_in)))
    return sorted(found, key=rank_key)[: match_in.limit]
