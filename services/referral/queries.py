"""Read-side use cases: lists, statistics and the delivery queue."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import aggregates, repository
from services.referral.audit import append_audit
from services.referral.errors import ContentWithdrawn
from services.referral.lifecycle import party_of, reads_content
from services.referral.models import OutboxEvent, Referral
from services.referral.schemas import (
    NoteRead,
    ReferralRead,
    ReferralStats,
    Status,
    WebhookDeadLetter,
)
from services.referral.service import get_visible
from services.referral.shaping import to_read
from services.referral.sla import is_overdue
from shared import outbox
from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import NotFound
from shared.i18n import N_
from shared.outbox import Replayed
from shared.pagination import Page, PageParams, decode_time_id_cursor, time_id_cursor
from shared.vocabulary import Role, ServiceCategory

OVERDUE_SCAN_LIMIT = 5000


def _scope(principal: Principal, box: str | None) -> Any:
    auditor = principal.has_any_role(Role.AUDITOR, Role.ADMIN)
    query = repository.visible_to(
        uuid.UUID(principal.org_id) if not auditor else None, auditor=auditor
    )
    org = uuid.UUID(principal.org_id)
    if box == "sent":
        query = query.where(Referral.sender_org_id == org)
    elif box == "received":
        query = query.where(Referral.recipient_org_id == org)
    return query


async def list_referrals(
    *,
    session: AsyncSession,
    principal: Principal,
    paging: PageParams,
    box: str | None,
    statuses: list[Status] | None,
    categories: list[ServiceCategory] | None,
    updated_since: datetime | None,
    overdue: bool | None,
    programme: str | None = None,
    host_country: str | None = None,
    include_payload: bool = False,
    request_id: str | None = None,
) -> Page[ReferralRead]:
    """One page of the referrals the caller may see, filtered, in order of last change.

    The JWEs come only with `include_payload`, under the single read's rules, and each one
    handed out is audited like a single read.
    """
    query = _scope(principal, box)
    if programme is not None:
        query = query.where(Referral.programme == programme)
    if host_country is not None:
        query = query.where(Referral.host_country == host_country)
    if not include_payload:
        query = repository.without_content(query)
    if statuses:
        query = query.where(Referral.status.in_([str(s) for s in statuses]))
    if categories:
        query = query.where(Referral.service_category.in_([str(c) for c in categories]))
    if updated_since is not None:
        query = query.where(Referral.updated_at >= updated_since)
    rows = await _page_rows(
        session, query, decode_time_id_cursor(paging.cursor), paging.limit, overdue
    )
    now = utcnow()
    items = [
        to_read(row, principal, now, with_content=include_payload) for row in rows[: paging.limit]
    ]
    for item in items:
        if item.payload is not None:
            await append_audit(
                session,
                action="referral.read",
                actor=principal,
                referral_id=item.id,
                request_id=request_id,
                details={"listed": True},
            )
    next_cursor = None
    if len(rows) > paging.limit:
        last = rows[paging.limit - 1]
        next_cursor = time_id_cursor(last.updated_at, last.id)
    return Page[ReferralRead](items=items, next_cursor=next_cursor)


async def _page_rows(
    session: AsyncSession,
    query: Any,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
    overdue: bool | None,
) -> Sequence[Referral]:
    if overdue is None:
        return await repository.list_page(session, query=query, after=after, limit=limit + 1)
    now = utcnow()
    query = query.where(Referral.status.in_([str(Status.REQUESTED), str(Status.RECEIVED)]))
    candidates = await repository.list_page(
        session, query=query, after=after, limit=OVERDUE_SCAN_LIMIT
    )
    return [r for r in candidates if is_overdue(r, now) == overdue][: limit + 1]


async def notes(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    include_payload: bool = False,
) -> list[NoteRead]:
    """The notes of a referral the caller is a party to; their JWEs only with `include_payload`."""
    referral = await get_visible(session, principal=principal, referral_id=referral_id)
    party = party_of(referral, principal)
    if party is None:
        raise NotFound(N_("No referral with this id is visible to your organisation."))
    if not reads_content(referral, party):
        raise ContentWithdrawn
    rows = await repository.notes(session, referral_id=referral_id, with_body=include_payload)
    return [
        NoteRead(
            id=n.id,
            referral_id=n.referral_id,
            author_org_id=n.author_org_id,
            kind=n.kind,
            created_at=n.created_at,
            body=n.body if include_payload else None,
        )
        for n in rows
    ]


async def stats(
    *,
    session: AsyncSession,
    principal: Principal,
    programme: str | None,
    recipient_org_id: uuid.UUID | None = None,
) -> ReferralStats:
    """Aggregate in the database the referrals the caller may see (optionally of one recipient)."""
    filters = _scope_filters(principal)
    if programme:
        filters.append(Referral.programme == programme)
    if recipient_org_id is not None:
        filters.append(Referral.recipient_org_id == recipient_org_id)
    by_status = await aggregates.counts_by(session, filters=filters, column=Referral.status)
    by_category = await aggregates.counts_by(
        session, filters=filters, column=Referral.service_category
    )
    by_programme = await aggregates.counts_by(session, filters=filters, column=Referral.programme)
    figures = await aggregates.cells(session, filters=filters, period=None, dimensions=[])
    total = figures.get(("total",), aggregates.Cell())
    completed = [*filters, Referral.status == str(Status.COMPLETED)]
    done = await aggregates.count(session, filters=completed)
    with_outcome = await aggregates.count(
        session, filters=[*completed, Referral.outcome.is_not(None)]
    )
    overdue = await aggregates.count(
        session, filters=[*filters, aggregates.overdue_condition(utcnow())]
    )
    return ReferralStats(
        total=sum(by_status.values()),
        by_status=by_status,
        by_category=by_category,
        by_programme={(k or "none"): v for k, v in by_programme.items()},
        median_hours_to_acknowledge=total.median_hours_to_acknowledge,
        p90_hours_to_acknowledge=total.p90_hours_to_acknowledge,
        median_hours_to_accept=total.median_hours_to_accept,
        p90_hours_to_accept=total.p90_hours_to_accept,
        share_with_outcome=round(with_outcome / done, 3) if done else None,
        overdue=overdue,
    )


def _scope_filters(principal: Principal) -> list[Any]:
    if principal.has_any_role(Role.AUDITOR, Role.ADMIN):
        return []
    org = uuid.UUID(principal.org_id)
    return [or_(Referral.sender_org_id == org, Referral.recipient_org_id == org)]


async def dead_letters(*, session: AsyncSession) -> list[WebhookDeadLetter]:
    """Notifications that exhausted their retries, oldest first."""
    rows = await outbox.dead_letters(session, model=OutboxEvent)
    return [
        WebhookDeadLetter(
            event_id=r.id,
            event=r.event,
            referral_id=r.referral_id,
            target_org_id=r.target_org_id,
            attempts=r.attempts,
            last_error=r.last_error,
            dead_at=r.dead_at,
        )
        for r in rows
        if r.dead_at is not None
    ]


async def replay_dead_letter(*, session: AsyncSession, event_id: uuid.UUID) -> Replayed:
    """Queue a dead-lettered notification again, with a fresh set of attempts."""
    await outbox.replay(session, model=OutboxEvent, event_id=event_id)
    return Replayed(event_id=event_id)
