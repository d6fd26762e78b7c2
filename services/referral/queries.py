"""Read-side use cases: lists, statistics and the delivery queue."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
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
) -> Page[ReferralRead]:
    """One page of the referrals the caller may see, filtered, in order of last change."""
    query = _scope(principal, box)
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
    items = [to_read(row, principal, now) for row in rows[: paging.limit]]
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
    *, session: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> list[NoteRead]:
    """The notes of a referral the caller is a party to."""
    referral = await get_visible(session, principal=principal, referral_id=referral_id)
    party = party_of(referral, principal)
    if party is None:
        raise NotFound(N_("No referral with this id is visible to your organisation."))
    if not reads_content(referral, party):
        raise ContentWithdrawn
    return [
        NoteRead.model_validate(n, from_attributes=True)
        for n in await repository.notes(session, referral_id=referral_id)
    ]


def _hours(pairs: list[tuple[datetime, datetime | None]]) -> list[float]:
    return [(end - start).total_seconds() / 3600 for start, end in pairs if end is not None]


def _median_p90(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return round(statistics.median(ordered), 2), round(p90, 2)


async def stats(
    *, session: AsyncSession, principal: Principal, programme: str | None
) -> ReferralStats:
    """Aggregate figures over the referrals the caller may see."""
    query = _scope(principal, None)
    if programme:
        query = query.where(Referral.programme == programme)
    rows = (await session.scalars(query)).all()
    now = utcnow()
    acknowledge = _median_p90(_hours([(r.created_at, r.acknowledged_at) for r in rows]))
    accept = _median_p90(_hours([(r.created_at, r.accepted_at) for r in rows]))
    completed = [r for r in rows if r.status == Status.COMPLETED]
    return ReferralStats(
        total=len(rows),
        by_status=dict(Counter(r.status for r in rows)),
        by_category=dict(Counter(r.service_category for r in rows)),
        by_programme=dict(Counter(r.programme or "none" for r in rows)),
        median_hours_to_acknowledge=acknowledge[0],
        p90_hours_to_acknowledge=acknowledge[1],
        median_hours_to_accept=accept[0],
        p90_hours_to_accept=accept[1],
        share_with_outcome=round(sum(1 for r in completed if r.outcome) / len(completed), 3)
        if completed
        else None,
        overdue=sum(1 for r in rows if is_overdue(r, now)),
    )


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
