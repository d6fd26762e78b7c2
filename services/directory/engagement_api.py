"""HTTP routes of engagement history, the contact log, capacity building and the partner page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from services.directory import engagement
from services.directory import service as directory
from services.directory.dependencies import Admin, Reader, RequestId, SelfService
from services.directory.paging import cursor_id, page_of
from services.directory.partner_schemas import (
    CapacityPlanCreate,
    CapacityPlanRead,
    CapacityPlanUpdate,
    ContactCreate,
    ContactRead,
    EngagementChangeCreate,
    EngagementChangeRead,
    PartnerPage,
)
from services.directory.shaping import (
    capacity_read,
    contact_read,
    engagement_read,
    organisation_read,
)
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Page, PageParams, page_params

router = APIRouter()
Paging = Annotated[PageParams, Depends(page_params)]
IfMatch = Annotated[
    str | None,
    Header(description="ETag of the version you read; a mismatch answers 412.", examples=['"3"']),
]


@router.post(
    "/organisations/{org_id}/engagement",
    name="directory.engagement.change",
    status_code=201,
    tags=["engagement"],
    summary="Change an organisation's engagement level",
    responses=problem_responses(403, 404, 422),
)
async def change_engagement(
    org_id: uuid.UUID,
    change_in: EngagementChangeCreate,
    session: SessionDep,
    admin: Admin,
    request_id: RequestId,
) -> EngagementChangeRead:
    """Move the organisation to a new engagement level, saying why and what is planned (admins).

    The previous level stays in the history at `GET .../engagement`.
    """
    change = await engagement.change_engagement(
        session=session, principal=admin, request_id=request_id, org_id=org_id, change_in=change_in
    )
    return engagement_read(change)


@router.get(
    "/organisations/{org_id}/engagement",
    name="directory.engagement.list",
    tags=["engagement"],
    summary="An organisation's engagement history",
    responses=problem_responses(400, 403, 404, 422),
)
async def list_engagement(
    org_id: uuid.UUID, session: SessionDep, principal: Reader, paging: Paging
) -> Page[EngagementChangeRead]:
    """List every change of the engagement level (from, to, when, why, by whom), newest first.

    Only the organisation itself, admins and auditors may read it (else 403).
    """
    rows = await engagement.engagement_history(
        session=session,
        principal=principal,
        org_id=org_id,
        before=cursor_id(paging),
        limit=paging.limit,
    )
    return page_of(Page[EngagementChangeRead], rows, paging, engagement_read)


@router.post(
    "/organisations/{org_id}/contacts",
    name="directory.contacts.create",
    status_code=201,
    tags=["engagement"],
    summary="Log a contact or joint decision",
    responses=problem_responses(403, 404, 422),
)
async def log_contact(
    org_id: uuid.UUID,
    contact_in: ContactCreate,
    session: SessionDep,
    principal: SelfService,
    request_id: RequestId,
) -> ContactRead:
    """Log a meeting, an MoU signed, a review or a joint decision of your organisation.

    Admins may log them for any organisation. Write about organisations, never a returnee.
    """
    contact = await engagement.log_contact(
        session=session,
        principal=principal,
        request_id=request_id,
        org_id=org_id,
        contact_in=contact_in,
    )
    return contact_read(contact)


@router.get(
    "/organisations/{org_id}/contacts",
    name="directory.contacts.list",
    tags=["engagement"],
    summary="An organisation's contact log",
    responses=problem_responses(400, 403, 404, 422),
)
async def list_contacts(
    org_id: uuid.UUID, session: SessionDep, principal: Reader, paging: Paging
) -> Page[ContactRead]:
    """List the logged contacts and joint decisions, most recently logged first."""
    rows = await engagement.list_contacts(
        session=session,
        principal=principal,
        org_id=org_id,
        before=cursor_id(paging),
        limit=paging.limit,
    )
    return page_of(Page[ContactRead], rows, paging, contact_read)


@router.post(
    "/organisations/{org_id}/capacity-plans",
    name="directory.capacityPlans.create",
    status_code=201,
    tags=["engagement"],
    summary="Record a capacity assessment and plan",
    responses=problem_responses(403, 404, 422),
)
async def create_capacity_plan(
    org_id: uuid.UUID,
    plan_in: CapacityPlanCreate,
    session: SessionDep,
    principal: SelfService,
    request_id: RequestId,
    response: Response,
) -> CapacityPlanRead:
    """Record an assessment (areas, gaps), the plan, its activities and progress indicators.

    Your organisation records its own; admins any organisation's.
    """
    plan = await engagement.create_capacity_plan(
        session=session, principal=principal, request_id=request_id, org_id=org_id, plan_in=plan_in
    )
    response.headers["ETag"] = directory.etag(plan)
    return capacity_read(plan)


@router.get(
    "/organisations/{org_id}/capacity-plans",
    name="directory.capacityPlans.list",
    tags=["engagement"],
    summary="An organisation's capacity-building records",
    responses=problem_responses(400, 403, 404, 422),
)
async def list_capacity_plans(
    org_id: uuid.UUID, session: SessionDep, principal: Reader, paging: Paging
) -> Page[CapacityPlanRead]:
    """List the organisation's capacity-building records, newest first."""
    rows = await engagement.list_capacity_plans(
        session=session,
        principal=principal,
        org_id=org_id,
        before=cursor_id(paging),
        limit=paging.limit,
    )
    return page_of(Page[CapacityPlanRead], rows, paging, capacity_read)


@router.get(
    "/capacity-plans/{plan_id}",
    name="directory.capacityPlans.get",
    tags=["engagement"],
    summary="Read a capacity-building record",
    responses=problem_responses(404),
)
async def get_capacity_plan(
    plan_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> CapacityPlanRead:
    """Return one record with its ETag; 404 unless it is your organisation's (or you oversee)."""
    plan = await engagement.get_capacity_plan(session=session, principal=principal, plan_id=plan_id)
    response.headers["ETag"] = directory.etag(plan)
    return capacity_read(plan)


@router.patch(
    "/capacity-plans/{plan_id}",
    name="directory.capacityPlans.update",
    tags=["engagement"],
    summary="Record progress on a capacity-building plan",
    responses=problem_responses(403, 404, 412, 422),
)
async def update_capacity_plan(
    plan_id: uuid.UUID,
    plan_in: CapacityPlanUpdate,
    session: SessionDep,
    principal: SelfService,
    request_id: RequestId,
    response: Response,
    if_match: IfMatch = None,
) -> CapacityPlanRead:
    """Replace the plan's gaps, activities or indicators with where they stand now."""
    plan = await engagement.update_capacity_plan(
        session=session,
        principal=principal,
        request_id=request_id,
        plan_id=plan_id,
        plan_in=plan_in,
        if_match=if_match,
    )
    response.headers["ETag"] = directory.etag(plan)
    return capacity_read(plan)


@router.get(
    "/organisations/{org_id}/partner-page",
    name="directory.organisations.getPartnerPage",
    tags=["engagement"],
    summary="An organisation's partnership page",
    responses=problem_responses(403, 404),
)
async def partner_page(org_id: uuid.UUID, session: SessionDep, principal: Reader) -> PartnerPage:
    """Return the organisation with its latest engagement changes, contacts and capacity plans.

    The SLA performance of its referrals lives in the referral service: `sla_performance_url`
    is its statistics as a recipient, read with your own token (auditors and admins).
    """
    org, changes, contacts, plans = await engagement.partner_page(
        session=session, principal=principal, org_id=org_id
    )
    return PartnerPage(
        organisation=organisation_read(principal, org),
        engagement=[engagement_read(row) for row in changes],
        contacts=[contact_read(row) for row in contacts],
        capacity_plans=[capacity_read(row) for row in plans],
        sla_performance_url=f"/api/v1/referrals/stats?recipient_org_id={org.id}",
    )
