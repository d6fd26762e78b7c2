"""Engagement and capacity building: each organisation's level history, contacts and plans."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory import service as directory
from services.directory.changes import record_change
from services.directory.errors import (
    CapacityPlanNotFound,
    EngagementByStewardOnly,
    InvalidReference,
    NotYourOrganisation,
    PartnerRecordsPrivate,
)
from services.directory.models import (
    CapacityPlan,
    EngagementChange,
    Organisation,
    PartnerContact,
)
from services.directory.partner_schemas import (
    CapacityPlanCreate,
    CapacityPlanUpdate,
    ContactCreate,
    EngagementChangeCreate,
)
from shared.auth import Principal
from shared.clock import utcnow
from shared.i18n import Message
from shared.ids import new_id
from shared.vocabulary import Role

PAGE_SECTION_LIMIT = 20


def _require_private_view(principal: Principal, org_id: uuid.UUID) -> None:
    if not directory.sees_private_details(principal, org_id):
        raise PartnerRecordsPrivate


def _require_edit(principal: Principal, org_id: uuid.UUID) -> None:
    if not directory.may_edit_organisation(principal, org_id):
        raise NotYourOrganisation


async def change_engagement(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    org_id: uuid.UUID,
    change_in: EngagementChangeCreate,
) -> EngagementChange:
    """Move an organisation to a new engagement level, keeping the old one in its history."""
    org = await directory.get_organisation(session=session, org_id=org_id)
    if not principal.has_any_role(Role.ADMIN):
        raise EngagementByStewardOnly
    activities = [a.model_dump(mode="json") for a in change_in.planned_activities]
    change = directory.add_engagement_change(
        session,
        org=org,
        principal=principal,
        to_level=change_in.level,
        reason=change_in.reason,
        planned_activities=activities,
    )
    org.engagement_level = change_in.level
    directory.bump(org)
    _audit(session, principal, request_id, "engagement.changed", change.id, org)
    await session.flush()
    return change


def _audit(
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    action: str,
    object_id: uuid.UUID,
    org: Organisation,
) -> None:
    record_change(
        session,
        principal=principal,
        request_id=request_id,
        action=action,
        object_type=action.split(".")[0],
        object_id=object_id,
        organisation_id=org.id,
        country=org.country,
    )


async def engagement_history(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    before: uuid.UUID | None,
    limit: int,
) -> list[EngagementChange]:
    """Return the organisation's engagement changes, newest first, to those who may see them."""
    await directory.get_organisation(session=session, org_id=org_id)
    _require_private_view(principal, org_id)
    return await repository.engagement_page(session, org_id=org_id, before=before, limit=limit)


async def log_contact(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    org_id: uuid.UUID,
    contact_in: ContactCreate,
) -> PartnerContact:
    """Log a contact or joint decision with your organisation (admins: with any)."""
    org = await directory.get_organisation(session=session, org_id=org_id)
    _require_edit(principal, org_id)
    counterpart = contact_in.counterpart_org_id
    if counterpart is not None and await repository.get(session, Organisation, counterpart) is None:
        raise InvalidReference(Message("'counterpart_org_id' names no organisation; check the id."))
    contact = PartnerContact(
        id=new_id(),
        organisation_id=org_id,
        recorded_by_org_id=principal.org_id,
        recorded_at=utcnow(),
        **contact_in.model_dump(mode="json", exclude={"counterpart_org_id", "occurred_on"}),
        counterpart_org_id=counterpart,
        occurred_on=contact_in.occurred_on,
    )
    session.add(contact)
    _audit(session, principal, request_id, "contact.logged", contact.id, org)
    await session.flush()
    return contact


async def list_contacts(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    before: uuid.UUID | None,
    limit: int,
) -> list[PartnerContact]:
    """Return the organisation's contact log, newest first, to those who may see it."""
    await directory.get_organisation(session=session, org_id=org_id)
    _require_private_view(principal, org_id)
    return await repository.contact_page(session, org_id=org_id, before=before, limit=limit)


async def create_capacity_plan(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    org_id: uuid.UUID,
    plan_in: CapacityPlanCreate,
) -> CapacityPlan:
    """Record a capacity assessment and its plan for your organisation (admins: for any)."""
    org = await directory.get_organisation(session=session, org_id=org_id)
    _require_edit(principal, org_id)
    plan = CapacityPlan(
        id=new_id(),
        organisation_id=org_id,
        row_version=1,
        **plan_in.model_dump(mode="json", exclude={"assessed_on"}),
        assessed_on=plan_in.assessed_on,
    )
    session.add(plan)
    _audit(session, principal, request_id, "capacity_plan.created", plan.id, org)
    await session.flush()
    return plan


async def _visible_plan(
    session: AsyncSession, principal: Principal, plan_id: uuid.UUID
) -> CapacityPlan:
    plan = await repository.get(session, CapacityPlan, plan_id)
    if plan is None or not directory.sees_private_details(principal, plan.organisation_id):
        raise CapacityPlanNotFound
    return plan


async def get_capacity_plan(
    *, session: AsyncSession, principal: Principal, plan_id: uuid.UUID
) -> CapacityPlan:
    """Return a capacity-building record to its organisation and overseers; 404 otherwise."""
    return await _visible_plan(session, principal, plan_id)


async def update_capacity_plan(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    plan_id: uuid.UUID,
    plan_in: CapacityPlanUpdate,
    if_match: str | None,
) -> CapacityPlan:
    """Record progress: the plan's gaps, activities and indicators as they stand now."""
    plan = await _visible_plan(session, principal, plan_id)
    _require_edit(principal, plan.organisation_id)
    directory.check_if_match(plan, if_match)
    changes = plan_in.model_dump(mode="json", exclude_unset=True)
    directory.refuse_nulls(plan, changes)
    for key, value in changes.items():
        setattr(plan, key, value)
    directory.bump(plan)
    org = await directory.get_organisation(session=session, org_id=plan.organisation_id)
    _audit(session, principal, request_id, "capacity_plan.updated", plan.id, org)
    await session.flush()
    return plan


async def list_capacity_plans(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    before: uuid.UUID | None,
    limit: int,
) -> list[CapacityPlan]:
    """Return the organisation's capacity-building records, newest first."""
    await directory.get_organisation(session=session, org_id=org_id)
    _require_private_view(principal, org_id)
    return await repository.capacity_page(session, org_id=org_id, before=before, limit=limit)


async def partner_page(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID
) -> tuple[Organisation, list[EngagementChange], list[PartnerContact], list[CapacityPlan]]:
    """Return the organisation with its latest engagement changes, contacts and plans."""
    org = await directory.get_organisation(session=session, org_id=org_id)
    _require_private_view(principal, org_id)
    limit = PAGE_SECTION_LIMIT
    return (
        org,
        await repository.engagement_page(session, org_id=org_id, before=None, limit=limit),
        await repository.contact_page(session, org_id=org_id, before=None, limit=limit),
        await repository.capacity_page(session, org_id=org_id, before=None, limit=limit),
    )
