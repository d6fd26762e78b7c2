"""Response-time deadlines: when a referral is due, when it is overdue, and the sweep over them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.lifecycle import Party, move, record_change
from services.referral.models import Referral
from services.referral.schemas import CLOSED_STATUSES, ReasonCode, Status, Urgency
from shared.clock import utcnow
from shared.contracts.directory import ResolvedFocalPoint
from shared.db import Database

ACKNOWLEDGE_HOURS = 4.0  # business hours to confirm receipt, capped by the response time
DeadlineAction = Literal["remind", "escalate", "cancel"]


def sla_deadlines(
    focal: ResolvedFocalPoint | None, start: datetime, urgency: Urgency
) -> tuple[datetime | None, datetime | None]:
    """Acknowledge and respond deadlines in the focal point's business hours."""
    if focal is None or not focal.response_time_hours:
        return None, None
    respond_hours = float(focal.response_time_hours)
    if urgency == Urgency.URGENT:
        respond_hours /= 2
    acknowledge_hours = min(ACKNOWLEDGE_HOURS, respond_hours)
    return (
        focal.schedule.add_business_hours(start, acknowledge_hours),
        focal.schedule.add_business_hours(start, respond_hours),
    )


def is_overdue(referral: Referral, now: datetime) -> bool:
    """A referral is overdue when its next deadline passed without the expected move."""
    if Status(referral.status) in CLOSED_STATUSES:
        return False
    if referral.status == Status.REQUESTED and referral.acknowledge_by:
        return now > referral.acknowledge_by
    if referral.status in (Status.REQUESTED, Status.RECEIVED) and referral.respond_by:
        return now > referral.respond_by
    return False


async def sweep_deadlines(database: Database, grace: timedelta) -> int:
    """Remind, escalate and finally cancel referrals nobody answered in time."""
    now = utcnow()
    changed = 0
    async with database.sessionmaker() as session, session.begin():
        unanswered = (
            await session.scalars(
                select(Referral)
                .where(
                    Referral.status.in_([str(Status.REQUESTED), str(Status.RECEIVED)]),
                    Referral.acknowledge_by.is_not(None),
                    Referral.acknowledge_by < now,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        for referral in unanswered:
            action = _deadline_action(referral, now, grace)
            if action is None:
                continue
            changed += 1
            await _take(session, referral, action, now)
    return changed


def _deadline_action(referral: Referral, now: datetime, grace: timedelta) -> DeadlineAction | None:
    respond_by = referral.respond_by
    if respond_by is not None and now > respond_by + grace:
        return "cancel"
    if respond_by is not None and now > respond_by and referral.escalated_at is None:
        return "escalate"
    if (
        referral.status == Status.REQUESTED
        and referral.overdue_since is None
        and referral.acknowledge_by is not None
        and now > referral.acknowledge_by
    ):
        return "remind"
    return None


async def _take(
    session: AsyncSession, referral: Referral, action: DeadlineAction, now: datetime
) -> None:
    if action == "cancel":
        await move(
            session,
            referral,
            to=Status.CANCELLED,
            reason=ReasonCode.NO_RESPONSE,
            by=None,
            now=now,
            action="referral.sla-cancel",
            request_id=None,
            details={},
            notify=(Party.RECIPIENT, Party.SENDER),
        )
        return
    notify: tuple[Party, ...]
    details: dict[str, Any] = {}
    if action == "remind":
        referral.overdue_since = now
        event, notify = "referral.reminder", (Party.RECIPIENT,)
    else:
        referral.escalated_at = now
        referral.overdue_since = referral.overdue_since or now
        event, notify = "referral.escalated", (Party.RECIPIENT, Party.SENDER)
        details = {"backup_focal_point_id": referral.backup_focal_point_id}
    await record_change(
        session,
        referral,
        now=now,
        action=f"referral.sla-{action}",
        actor=None,
        request_id=None,
        details=details,
        event=event,
        notify=notify,
    )
