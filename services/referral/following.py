"""Coordinators follow what they route: status and deadlines, never payloads, and stalls."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.aggregates import overdue_condition
from services.referral.audit import append_audit
from services.referral.models import OpenReferral, OutboxEvent, Referral
from services.referral.schemas import (
    FollowedReferral,
    OpenReferralStatus,
    Outcome,
    ReasonCode,
    Status,
)
from services.referral.sla import is_overdue
from shared.auth import Principal
from shared.clock import utcnow
from shared.db import Database
from shared.ids import new_id
from shared.pagination import Page, PageParams, decode_time_id_cursor, next_time_id_cursor

STALLED_EVENT = "referral.stalled"


async def list_followed(
    *, session: AsyncSession, principal: Principal, paging: PageParams
) -> Page[FollowedReferral]:
    """The open referrals the caller's organisation assigned, with their referral's metadata."""
    rows = await repository.followed_page(
        session,
        coordinator_org_id=uuid.UUID(principal.org_id),
        after=decode_time_id_cursor(paging.cursor),
        limit=paging.limit + 1,
    )
    now = utcnow()
    items = [_followed(row, referral, now) for row, referral in rows[: paging.limit]]
    next_cursor = next_time_id_cursor(rows, paging.limit, lambda r: (r[0].created_at, r[0].id))
    return Page[FollowedReferral](items=items, next_cursor=next_cursor)


def _followed(row: OpenReferral, referral: Referral | None, now: datetime) -> FollowedReferral:
    followed = FollowedReferral(
        open_referral_id=row.id,
        open_status=OpenReferralStatus(row.status),
        service_category=row.service_category,
        assigned_org_id=row.assigned_org_id,
        referral_id=row.referral_id,
        stalled_at=row.stalled_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    if referral is None:
        return followed
    return followed.model_copy(
        update={
            "status": Status(referral.status),
            "status_reason": ReasonCode(referral.status_reason) if referral.status_reason else None,
            "start_after": referral.start_after,
            "acknowledge_by": referral.acknowledge_by,
            "respond_by": referral.respond_by,
            "overdue": is_overdue(referral, now),
            "acknowledged_at": referral.acknowledged_at,
            "accepted_at": referral.accepted_at,
            "closed_at": referral.closed_at,
            "outcome": Outcome(referral.outcome) if referral.outcome else None,
            "updated_at": max(row.updated_at, referral.updated_at),
        }
    )


async def sweep_stalled(database: Database) -> int:
    """Tell each coordinator, once, that a referral it routed passed a deadline unanswered."""
    now = utcnow()
    async with database.sessionmaker() as session, session.begin():
        stalled = await repository.newly_stalled(session, overdue=overdue_condition(now))
        for row, referral in stalled:
            row.stalled_at = now
            session.add(
                OutboxEvent(
                    id=new_id(),
                    referral_id=referral.id,
                    target_org_id=row.coordinator_org_id,
                    webhook_url=row.coordinator_webhook_url,
                    event=STALLED_EVENT,
                    status=referral.status,
                    occurred_at=now,
                    attempts=0,
                    next_attempt_at=now,
                )
            )
            await append_audit(
                session,
                action=STALLED_EVENT,
                actor=None,
                referral_id=referral.id,
                request_id=None,
                details={
                    "open_referral_id": str(row.id),
                    "coordinator_org_id": str(row.coordinator_org_id),
                },
            )
    return len(stalled)
