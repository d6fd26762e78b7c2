"""HTTP routes of the withdrawal outbox: dead letters and their replay (admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.consent.dependencies import Admin
from services.consent.models import OutboxEvent
from services.consent.schemas import WithdrawalDeadLetter
from shared import outbox
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.outbox import Replayed

router = APIRouter(prefix="/consents/deliveries", tags=["withdrawal notices"])


@router.get(
    "/dead-letters",
    name="consents.deliveries.listDeadLetters",
    summary="Withdrawal notices that could not be delivered",
    responses=problem_responses(),
)
async def list_dead_letters(session: SessionDep, principal: Admin) -> list[WithdrawalDeadLetter]:
    """List withdrawal notices the referral service never took, oldest first (admin).

    Until a notice is delivered, referrals resting on the withdrawn consent stay open. Each item
    names the event and the consent, the number of attempts and the last error (`HTTP 503`,
    `timeout`, `upstream-unavailable`...). Fix the cause, then replay the notice.
    """
    rows = await outbox.dead_letters(session, model=OutboxEvent)
    return [
        WithdrawalDeadLetter(
            event_id=row.id,
            event=row.kind,
            consent_id=row.payload["consent_id"],
            attempts=row.attempts,
            last_error=row.last_error,
            dead_at=row.dead_at,
        )
        for row in rows
        if row.dead_at is not None
    ]


@router.post(
    "/{event_id}/replay",
    name="consents.deliveries.replay",
    summary="Retry a dead-lettered withdrawal notice",
    status_code=202,
    responses=problem_responses(404),
)
async def replay_dead_letter(
    event_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Replayed:
    """Put a dead-lettered withdrawal notice back in the delivery queue with fresh attempts.

    Admin only. 404 when no dead letter has this id (it was replayed or delivered already).
    """
    await outbox.replay(session, model=OutboxEvent, event_id=event_id)
    return Replayed(event_id=event_id)
