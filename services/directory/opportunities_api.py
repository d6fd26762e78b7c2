"""HTTP routes of the skills taxonomy, opportunities and matching."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from services.directory import opportunities
from services.directory import service as directory
from services.directory.dependencies import Reader, RequestId, SelfService
from services.directory.paging import cursor_id, page_of
from services.directory.partner_schemas import (
    MatchHit,
    MatchRequest,
    MatchResult,
    OpportunityCreate,
    OpportunityKind,
    OpportunityRead,
    OpportunityUpdate,
    Skill,
)
from services.directory.shaping import opportunity_read
from services.directory.taxonomy import skill, unit_groups
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Page, PageParams, page_params

router = APIRouter()
Paging = Annotated[PageParams, Depends(page_params)]
IfMatch = Annotated[
    str | None,
    Header(description="ETag of the version you read; a mismatch answers 412.", examples=['"3"']),
]


@router.get(
    "/skills",
    name="directory.skills.list",
    tags=["opportunities"],
    summary="The skills taxonomy (ISCO-08)",
)
async def list_skills(
    _principal: Reader,
    q: Annotated[str | None, Query(max_length=100, examples=["mechanic"])] = None,
) -> list[Skill]:
    """List the ISCO-08 unit groups opportunities and profiles use, with English and French titles.

    `q` keeps the groups whose code starts with it or whose title (either language) contains it.
    """
    needle = (q or "").casefold()
    return [
        Skill.model_validate(skill(code))
        for code, group in unit_groups().items()
        if not needle
        or code.startswith(needle)
        or needle in group["en"].casefold()
        or needle in group["fr"].casefold()
    ]


@router.post(
    "/opportunities",
    name="directory.opportunities.create",
    status_code=201,
    tags=["opportunities"],
    summary="Publish a job, apprenticeship or course",
    responses=problem_responses(403, 404, 422),
)
async def create_opportunity(
    opportunity_in: OpportunityCreate,
    session: SessionDep,
    principal: SelfService,
    request_id: RequestId,
    response: Response,
) -> OpportunityRead:
    """Publish an opportunity of your organisation with the ISCO-08 skills it requires.

    Name `service_id` (one of your services) so matched returnees can be referred to it.
    """
    row = await opportunities.create_opportunity(
        session=session, principal=principal, request_id=request_id, opportunity_in=opportunity_in
    )
    response.headers["ETag"] = directory.etag(row)
    return opportunity_read(row)


@router.get(
    "/opportunities",
    name="directory.opportunities.list",
    tags=["opportunities"],
    summary="List opportunities",
    responses=problem_responses(400, 422),
)
async def list_opportunities(
    session: SessionDep,
    _principal: Reader,
    paging: Paging,
    country: Annotated[str | None, Query(examples=["NG"], min_length=2, max_length=2)] = None,
    kind: OpportunityKind | None = None,
    organisation_id: uuid.UUID | None = None,
) -> Page[OpportunityRead]:
    """List the published opportunities, optionally of one country, kind or organisation."""
    rows = await opportunities.list_opportunities(
        session=session,
        country=country,
        kind=kind,
        organisation_id=organisation_id,
        after=cursor_id(paging),
        limit=paging.limit,
    )
    return page_of(Page[OpportunityRead], rows, paging, opportunity_read)


@router.post(
    "/opportunities/match",
    name="directory.opportunities.match",
    tags=["opportunities"],
    summary="Match a skills profile to opportunities",
    responses=problem_responses(422),
)
async def match_opportunities(
    match_in: MatchRequest, session: SessionDep, _principal: Reader
) -> MatchResult:
    """Rank the open opportunities of a country by fit to a skills profile, then by distance.

    Send ISCO-08 codes only, never a name or case reference. Fit gives full credit for the same
    unit group, half for the same minor group, a quarter for the same sub-major group. To act on
    a hit, refer the returnee to `refer_to_service_id` with POST /api/v1/referrals: consent
    and the provider's SOP apply as for any referral.
    """
    found = await opportunities.match(session=session, match_in=match_in)
    return MatchResult(
        items=[
            MatchHit(
                opportunity=opportunity_read(hit.opportunity),
                fit=hit.fit,
                matched_skills=hit.matched_skills,
                distance_km=hit.distance_km,
                refer_to_service_id=hit.opportunity.service_id,
            )
            for hit in found
        ]
    )


@router.get(
    "/opportunities/{opportunity_id}",
    name="directory.opportunities.get",
    tags=["opportunities"],
    summary="Read an opportunity",
    responses=problem_responses(404),
)
async def get_opportunity(
    opportunity_id: uuid.UUID, session: SessionDep, _principal: Reader, response: Response
) -> OpportunityRead:
    """Return one opportunity with its ETag and HSDS mapping."""
    row = await opportunities.get_opportunity(session=session, opportunity_id=opportunity_id)
    response.headers["ETag"] = directory.etag(row)
    return opportunity_read(row)


@router.patch(
    "/opportunities/{opportunity_id}",
    name="directory.opportunities.update",
    tags=["opportunities"],
    summary="Change an opportunity",
    responses=problem_responses(403, 404, 412, 422),
)
async def update_opportunity(
    opportunity_id: uuid.UUID,
    opportunity_in: OpportunityUpdate,
    session: SessionDep,
    principal: SelfService,
    request_id: RequestId,
    response: Response,
    if_match: IfMatch = None,
) -> OpportunityRead:
    """Change the places left, dates or description of your organisation's opportunity."""
    row = await opportunities.update_opportunity(
        session=session,
        principal=principal,
        request_id=request_id,
        opportunity_id=opportunity_id,
        opportunity_in=opportunity_in,
        if_match=if_match,
    )
    response.headers["ETag"] = directory.etag(row)
    return opportunity_read(row)
