"""Open referrals: a coordinator picks the provider, then the sender submits the case file."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import creation
from services.referral.audit import append_audit
from services.referral.errors import IllegalTransition, ReferralNotFound
from services.referral.models import OpenReferral, OutboxEvent
from services.referral.schemas import (
    OpenReferralAssign,
    OpenReferralCreate,
    OpenReferralStatus,
    OpenReferralSubmit,
    ReferralCreate,
    ReferralRead,
)
from services.referral.service import Clients, Context
from shared.clock import utcnow
from shared.contracts.directory import ServiceRead
from shared.errors import UnprocessableContent
from shared.i18n import N_, Message
from shared.ids import new_id


class NotAMember(UnprocessableContent):
    """The chosen service's provider is not coordinated by this organisation."""

    slug = "not-a-member"
    title = N_("Provider is not a member")
    detail = N_(
        "The chosen service belongs to an organisation you do not coordinate. Choose a "
        "service of one of your member providers."
    )


def _notify(
    session: AsyncSession, open_referral: OpenReferral, event: str, *, to_sender: bool
) -> None:
    session.add(
        OutboxEvent(
            id=new_id(),
            referral_id=open_referral.id,
            target_org_id=open_referral.sender_org_id
            if to_sender
            else open_referral.coordinator_org_id,
            webhook_url=open_referral.sender_webhook_url
            if to_sender
            else open_referral.coordinator_webhook_url,
            event=event,
            status=open_referral.status,
            occurred_at=open_referral.updated_at,
            attempts=0,
            next_attempt_at=open_referral.updated_at,
        )
    )


async def create(
    *, session: AsyncSession, context: Context, open_in: OpenReferralCreate, clients: Clients
) -> OpenReferral:
    """Route an open referral to the coordinator of the area."""
    coordinator = await clients.directory.coordinator(
        country=open_in.country,
        admin_area=open_in.admin_area,
        category=str(open_in.service_category),
        request_id=context.request_id,
    )
    sender = await clients.directory.organisation(uuid.UUID(context.principal.org_id))
    now = utcnow()
    open_referral = OpenReferral(
        id=new_id(),
        sender_org_id=uuid.UUID(context.principal.org_id),
        coordinator_org_id=coordinator.id,
        coordinator_webhook_url=coordinator.webhook_url,
        sender_webhook_url=sender.webhook_url,
        service_category=str(open_in.service_category),
        country=open_in.country,
        admin_area=open_in.admin_area,
        purpose=str(open_in.purpose),
        urgency=str(open_in.urgency),
        requested_categories=[str(c) for c in open_in.requested_categories],
        status=str(OpenReferralStatus.OPEN),
        assigned_service_id=None,
        assigned_org_id=None,
        referral_id=None,
        created_at=now,
        updated_at=now,
    )
    session.add(open_referral)
    await append_audit(
        session,
        action="open-referral.created",
        actor=context.principal,
        referral_id=open_referral.id,
        request_id=context.request_id,
        details={"coordinator_org_id": str(coordinator.id)},
    )
    _notify(session, open_referral, "open-referral.requested", to_sender=False)
    return open_referral


async def visible(session: AsyncSession, *, context: Context, open_id: uuid.UUID) -> OpenReferral:
    """The open referral, if the caller is its sender or its coordinator."""
    row = await session.get(OpenReferral, open_id, with_for_update=True)
    org = context.principal.org_id
    if row is None or org not in (str(row.sender_org_id), str(row.coordinator_org_id)):
        raise ReferralNotFound
    return row


async def list_visible(*, session: AsyncSession, context: Context) -> list[OpenReferral]:
    """Open referrals the caller sent or coordinates."""
    org = uuid.UUID(context.principal.org_id)
    return list(
        (
            await session.scalars(
                select(OpenReferral)
                .where(
                    or_(OpenReferral.sender_org_id == org, OpenReferral.coordinator_org_id == org),
                )
                .order_by(OpenReferral.created_at)
            )
        ).all()
    )


async def assign(
    *,
    session: AsyncSession,
    context: Context,
    open_id: uuid.UUID,
    assign_in: OpenReferralAssign,
    clients: Clients,
) -> OpenReferral:
    """The coordinator assigns a member provider's service; the sender is notified."""
    row = await visible(session, context=context, open_id=open_id)
    if context.principal.org_id != str(row.coordinator_org_id):
        raise ReferralNotFound
    if row.status != OpenReferralStatus.OPEN:
        raise IllegalTransition(
            Message(
                "This open referral is '{status}'; only open ones can be assigned.",
                status=row.status,
            ),
            allowed=[],
        )
    chosen = await _member_service(clients, row, assign_in.service_id)
    row.assigned_service_id = assign_in.service_id
    row.assigned_org_id = chosen.organisation_id
    row.status, row.updated_at = str(OpenReferralStatus.ASSIGNED), utcnow()
    await append_audit(
        session,
        action="open-referral.assigned",
        actor=context.principal,
        referral_id=row.id,
        request_id=context.request_id,
        details={"service_id": str(assign_in.service_id)},
    )
    _notify(session, row, "open-referral.assigned", to_sender=True)
    return row


async def _member_service(
    clients: Clients, row: OpenReferral, service_id: uuid.UUID
) -> ServiceRead:
    chosen = await clients.directory.service(service_id)
    members = await clients.directory.member_ids(row.coordinator_org_id)
    if chosen.organisation_id not in members | {row.coordinator_org_id}:
        raise NotAMember
    if chosen.category != row.service_category:
        raise UnprocessableContent(
            Message(
                "The chosen service offers '{category}', but this open referral asks "
                "for '{service_category}'. Choose a matching service.",
                category=chosen.category,
                service_category=row.service_category,
            )
        )
    return chosen


async def submit(
    *,
    session: AsyncSession,
    context: Context,
    open_id: uuid.UUID,
    submit_in: OpenReferralSubmit,
    clients: Clients,
) -> ReferralRead:
    """The sender sends the case file to the assigned provider under the usual rules."""
    row = await visible(session, context=context, open_id=open_id)
    if context.principal.org_id != str(row.sender_org_id):
        raise ReferralNotFound
    if row.status != OpenReferralStatus.ASSIGNED or row.assigned_service_id is None:
        raise IllegalTransition(
            Message(
                "This open referral is '{status}'; submit the case file once the "
                "coordinator has assigned a provider.",
                status=row.status,
            ),
            allowed=[],
        )
    referral, _ = await creation.create(
        session=session,
        context=context,
        clients=clients,
        idempotency_key=None,
        referral_in=ReferralCreate(
            service_id=row.assigned_service_id,
            subject_ref=submit_in.subject_ref,
            purpose=row.purpose,
            urgency=row.urgency,
            requested_categories=row.requested_categories,
            casefile=submit_in.casefile,
            start_after=submit_in.start_after,
        ),
    )
    row.referral_id, row.status = referral.id, str(OpenReferralStatus.SUBMITTED)
    row.updated_at = utcnow()
    _notify(session, row, "open-referral.submitted", to_sender=False)
    return referral
