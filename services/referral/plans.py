"""Reintegration plans: a returnee's referrals across phases, each party seeing its own part."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.audit import append_audit
from services.referral.lifecycle import party_of
from services.referral.models import PlanItem, Referral, ReintegrationPlan
from services.referral.schemas import (
    PlanCreate,
    PlanItemCreate,
    PlanItemRead,
    PlanItemStatus,
    PlanItemUpdate,
    PlanRead,
    PlanUpdate,
    Status,
)
from services.referral.service import Context, subject_digest
from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import Conflict, NotFound, PreconditionFailed, UnprocessableContent
from shared.i18n import N_, Message
from shared.ids import new_id
from shared.pagination import Page, PageParams, decode_time_id_cursor, next_time_id_cursor
from shared.vocabulary import Role

# What a linked referral's status means for the plan.
ITEM_STATUS: dict[Status, PlanItemStatus] = {
    Status.REQUESTED: PlanItemStatus.REFERRED,
    Status.RECEIVED: PlanItemStatus.REFERRED,
    Status.ACCEPTED: PlanItemStatus.IN_PROGRESS,
    Status.IN_PROGRESS: PlanItemStatus.IN_PROGRESS,
    Status.ON_HOLD: PlanItemStatus.IN_PROGRESS,
    Status.COMPLETED: PlanItemStatus.DONE,
    Status.REJECTED: PlanItemStatus.CANCELLED,
    Status.CANCELLED: PlanItemStatus.CANCELLED,
    Status.FAILED: PlanItemStatus.CANCELLED,
    Status.ENTERED_IN_ERROR: PlanItemStatus.CANCELLED,
}
Row = tuple[PlanItem, Referral | None]


class PlanNotFound(NotFound):
    """The plan does not exist, or the caller's organisation is not party to any of it."""

    slug = "plan-not-found"
    title = N_("Plan not found")
    detail = N_("No reintegration plan with this id is visible to your organisation.")


class PlanItemNotFound(NotFound):
    """The plan has no item with this id."""

    slug = "plan-item-not-found"
    title = N_("Plan item not found")
    detail = N_("This plan has no item with this id. List the plan to see its items.")


class PlanChanged(PreconditionFailed):
    """If-Match did not match the plan's current ETag."""

    slug = "plan-changed"


class PlanExists(Conflict):
    """The organisation already has a plan for this returnee."""

    slug = "plan-exists"
    title = N_("A plan already exists")


class ReferralNotLinkable(UnprocessableContent):
    """The referral is not one the plan's owner sent for this returnee and category."""

    slug = "referral-not-linkable"
    title = N_("Referral cannot be linked")
    detail = N_(
        "No referral your organisation sent for this plan's returnee has this id. Link a "
        "referral you sent for the same returnee (the same pseudonym)."
    )


class ReferralAlreadyPlanned(Conflict):
    """The referral is already a step of a plan."""

    slug = "referral-already-planned"
    title = N_("Referral already in a plan")
    detail = N_(
        "This referral is already linked to a plan item. Unlink it there first, or link "
        "another referral."
    )


class ItemFollowsReferral(Conflict):
    """A linked item's status is the referral's; it cannot be set by hand."""

    slug = "plan-item-follows-referral"
    title = N_("Status follows the referral")
    detail = N_(
        "This item is linked to a referral, so its status follows the referral's. Change the "
        "referral's status instead, or unlink the referral (referral_id: null) first."
    )


def item_status(item: PlanItem, referral: Referral | None) -> PlanItemStatus:
    """The item's status: its linked referral's, else the one set by hand."""
    if referral is not None:
        return ITEM_STATUS[Status(referral.status)]
    return PlanItemStatus(item.status)


async def create(*, session: AsyncSession, context: Context, plan_in: PlanCreate) -> PlanRead:
    """Start a plan for one returnee of the caller's office, with its first items."""
    owner = uuid.UUID(context.principal.org_id)
    digest = subject_digest(plan_in.subject_ref, context.subject_key)
    await repository.lock_subject(session, subject_digest=digest)  # one plan per returnee
    existing = await repository.plan_for_subject(session, owner_org_id=owner, digest=digest)
    if existing is not None:
        raise PlanExists(
            Message(
                "Your organisation already has a plan for this returnee ({id}). Add items "
                "to that plan instead.",
                id=existing.id,
            ),
            existing_plan_id=str(existing.id),
        )
    now = utcnow()
    plan = ReintegrationPlan(
        id=new_id(),
        owner_org_id=owner,
        subject_digest=digest,
        programme=plan_in.programme,
        expected_return_date=plan_in.expected_return_date,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(plan)
    await session.flush()  # no relationship() tells the unit of work to insert it first
    for item_in in plan_in.items:
        await _add_item(session, plan, item_in, now)
    await _audit(session, context, plan, "plan.created", {"items": len(plan_in.items)})
    return await _shaped(session, plan, context.principal)


async def read(*, session: AsyncSession, context: Context, plan_id: uuid.UUID) -> PlanRead:
    """The plan with the items the caller may see; 404 when it may see none."""
    plan = await session.get(ReintegrationPlan, plan_id)
    if plan is None:
        raise PlanNotFound
    shown = _shown(plan, await _rows(session, [plan.id]), context.principal)
    if shown is None:
        raise PlanNotFound
    await _audit(session, context, plan, "plan.read", None)
    return _to_read(plan, shown)


async def list_plans(
    *, session: AsyncSession, principal: Principal, paging: PageParams
) -> Page[PlanRead]:
    """One page of the plans the caller owns or is party to, in order of last change."""
    everyone = principal.has_any_role(Role.ADMIN, Role.AUDITOR)
    query = repository.plans_visible_to(
        None if everyone else uuid.UUID(principal.org_id),
        owner=principal.has_any_role(Role.HOST_OFFICE),
    )
    plans = await repository.plan_page(
        session,
        query=query,
        after=decode_time_id_cursor(paging.cursor),
        limit=paging.limit + 1,
    )
    rows = await _rows(session, [p.id for p in plans[: paging.limit]])
    items = []
    for plan in plans[: paging.limit]:
        shown = _shown(plan, [r for r in rows if r[0].plan_id == plan.id], principal)
        if shown is not None:
            items.append(_to_read(plan, shown))
    next_cursor = next_time_id_cursor(plans, paging.limit, lambda p: (p.updated_at, p.id))
    return Page[PlanRead](items=items, next_cursor=next_cursor)


async def update(
    *,
    session: AsyncSession,
    context: Context,
    plan_id: uuid.UUID,
    plan_in: PlanUpdate,
    if_match: str | None,
) -> PlanRead:
    """Change the plan's expected return date or programme (its owner only)."""
    plan = await _owned(session, context, plan_id, if_match)
    changed = sorted(plan_in.model_fields_set)
    for name in changed:
        setattr(plan, name, getattr(plan_in, name))
    await _touch(session, context, plan, "plan.updated", {"fields": changed})
    return await _shaped(session, plan, context.principal)


async def add_item(
    *,
    session: AsyncSession,
    context: Context,
    plan_id: uuid.UUID,
    item_in: PlanItemCreate,
    if_match: str | None,
) -> PlanRead:
    """Add a step to the plan (its owner only)."""
    plan = await _owned(session, context, plan_id, if_match)
    item = await _add_item(session, plan, item_in, utcnow())
    await _touch(session, context, plan, "plan.item-added", {"item_id": str(item.id)})
    return await _shaped(session, plan, context.principal)


async def update_item(
    *,
    session: AsyncSession,
    context: Context,
    plan_id: uuid.UUID,
    item_id: uuid.UUID,
    item_in: PlanItemUpdate,
    if_match: str | None,
) -> PlanRead:
    """Change a step's date or status, or link (or unlink) its referral (the owner only)."""
    plan = await _owned(session, context, plan_id, if_match)
    item = await session.get(PlanItem, item_id, with_for_update=True)
    if item is None or item.plan_id != plan.id:
        raise PlanItemNotFound
    fields = item_in.model_fields_set
    referral_id = item_in.referral_id if "referral_id" in fields else item.referral_id
    if "status" in fields and referral_id is not None:
        raise ItemFollowsReferral
    if "referral_id" in fields and referral_id is not None and referral_id != item.referral_id:
        await _check_link(session, plan, referral_id, item.service_category)
    if "planned_date" in fields:
        item.planned_date = item_in.planned_date
    if "referral_id" in fields:
        item.referral_id = referral_id
        item.status = str(PlanItemStatus.REFERRED if referral_id else PlanItemStatus.PLANNED)
    if item_in.status is not None:
        item.status = str(item_in.status)
    item.updated_at = utcnow()
    await _flush_links(session)
    details = {"item_id": str(item.id), "fields": sorted(fields)}
    await _touch(session, context, plan, "plan.item-updated", details)
    return await _shaped(session, plan, context.principal)


async def _add_item(
    session: AsyncSession, plan: ReintegrationPlan, item_in: PlanItemCreate, now: datetime
) -> PlanItem:
    if item_in.referral_id is not None:
        if "status" in item_in.model_fields_set:
            raise ItemFollowsReferral
        await _check_link(session, plan, item_in.referral_id, str(item_in.service_category))
    item = PlanItem(
        id=new_id(),
        plan_id=plan.id,
        phase=str(item_in.phase),
        service_category=str(item_in.service_category),
        planned_date=item_in.planned_date,
        status=str(PlanItemStatus.REFERRED if item_in.referral_id else item_in.status),
        referral_id=item_in.referral_id,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    await _flush_links(session)  # the next link check must see this one
    return item


async def _flush_links(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError:  # a concurrent request linked the same referral first
        raise ReferralAlreadyPlanned from None


async def _check_link(
    session: AsyncSession, plan: ReintegrationPlan, referral_id: uuid.UUID, category: str
) -> None:
    """Refuse a referral the owner did not send for this returnee, or one already planned."""
    referral = await repository.get(session, referral_id=referral_id)
    if (
        referral is None
        or referral.sender_org_id != plan.owner_org_id
        or referral.subject_digest != plan.subject_digest
    ):
        raise ReferralNotLinkable
    if referral.service_category != category:
        raise ReferralNotLinkable(
            Message(
                "The referral is for '{referral_category}', but this item plans "
                "'{category}'. Link a referral for the item's category.",
                referral_category=referral.service_category,
                category=category,
            )
        )
    if await repository.item_for_referral(session, referral_id=referral_id) is not None:
        raise ReferralAlreadyPlanned


async def _owned(
    session: AsyncSession, context: Context, plan_id: uuid.UUID, if_match: str | None
) -> ReintegrationPlan:
    plan = await session.get(ReintegrationPlan, plan_id, with_for_update=True)
    if plan is None or str(plan.owner_org_id) != context.principal.org_id:
        raise PlanNotFound
    if if_match is not None and if_match.strip() not in (etag(plan), "*"):
        raise PlanChanged
    return plan


def etag(plan: ReintegrationPlan) -> str:
    """The ETag of the plan's current version."""
    return f'"{plan.version}"'


async def _touch(
    session: AsyncSession,
    context: Context,
    plan: ReintegrationPlan,
    action: str,
    details: dict[str, Any],
) -> None:
    plan.version += 1
    plan.updated_at = utcnow()
    await _audit(session, context, plan, action, details)


async def _audit(
    session: AsyncSession,
    context: Context,
    plan: ReintegrationPlan,
    action: str,
    details: dict[str, Any] | None,
) -> None:
    await append_audit(
        session,
        action=action,
        actor=context.principal,
        referral_id=plan.id,  # the audit trail's object id: the plan here
        request_id=context.request_id,
        details=details,
    )


async def _rows(session: AsyncSession, plan_ids: Sequence[uuid.UUID]) -> list[Row]:
    return list(await repository.plan_items(session, plan_ids=plan_ids)) if plan_ids else []


async def _shaped(session: AsyncSession, plan: ReintegrationPlan, principal: Principal) -> PlanRead:
    await session.flush()
    return _to_read(plan, _shown(plan, await _rows(session, [plan.id]), principal) or [])


def _shown(plan: ReintegrationPlan, rows: list[Row], principal: Principal) -> list[Row] | None:
    """The rows the caller may see: all for the owner and auditors, else its referrals' only."""
    owner = str(plan.owner_org_id) == principal.org_id and principal.has_any_role(Role.HOST_OFFICE)
    if owner or principal.has_any_role(Role.ADMIN, Role.AUDITOR):
        return rows
    mine: list[Row] = [
        (i, r) for i, r in rows if r is not None and party_of(r, principal) is not None
    ]
    return mine or None


def _to_read(plan: ReintegrationPlan, rows: list[Row]) -> PlanRead:
    items = [_item_read(item, referral) for item, referral in rows]
    progress = dict.fromkeys(PlanItemStatus, 0)
    for item in items:
        progress[item.status] += 1
    return PlanRead(
        id=plan.id,
        version=plan.version,
        owner_org_id=plan.owner_org_id,
        programme=plan.programme,
        expected_return_date=plan.expected_return_date,
        items=items,
        progress=progress,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
    )


def _item_read(item: PlanItem, referral: Referral | None) -> PlanItemRead:
    return PlanItemRead(
        id=item.id,
        phase=item.phase,
        service_category=item.service_category,
        planned_date=item.planned_date,
        status=item_status(item, referral),
        referral_id=item.referral_id,
        referral_status=Status(referral.status) if referral else None,
        start_after=referral.start_after if referral else None,
        respond_by=referral.respond_by if referral else None,
        updated_at=item.updated_at,
    )
