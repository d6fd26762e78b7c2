"""Status changes a party asks for, and the cancellations a withdrawn consent causes."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.basis import require_basis
from services.referral.encryption import encrypt_for_parties
from services.referral.errors import ReferralChanged
from services.referral.lifecycle import (
    BOTH_PARTIES,
    check_move,
    move,
    other_party,
    party_of,
    require_reason,
)
from services.referral.models import Referral
from services.referral.schemas import ReasonCode, Status, StatusChange
from services.referral.service import Clients, Context, etag, get_visible, subject_digest
from shared.clock import utcnow


async def change_status(
    *,
    session: AsyncSession,
    context: Context,
    referral_id: uuid.UUID,
    change: StatusChange,
    if_match: str | None,
    clients: Clients,
) -> Referral:
    """Move a referral if the caller's side may make that move now."""
    principal = context.principal
    referral = await get_visible(
        session, principal=principal, referral_id=referral_id, for_update=True
    )
    if if_match is not None and if_match.strip() not in (etag(referral), "*"):
        raise ReferralChanged
    party = party_of(referral, principal)
    check_move(referral, change.status, party)
    require_reason(change)
    if change.feedback is not None and change.feedback.comment:
        await require_basis(clients, referral, context.request_id)
    await _record_outcome(referral, change, clients)
    await move(
        session,
        referral,
        to=change.status,
        reason=change.reason,
        by=principal,
        now=utcnow(),
        action=f"referral.{change.status}",
        request_id=context.request_id,
        details={"reason": change.reason, "outcome": change.outcome},
        notify=(other_party(party),),
    )
    return referral


async def _record_outcome(referral: Referral, change: StatusChange, clients: Clients) -> None:
    if change.status != Status.COMPLETED:
        return
    referral.outcome = str(change.outcome)
    if change.feedback is None:
        return
    referral.feedback_score = change.feedback.score
    if change.feedback.comment:
        referral.feedback = await encrypt_for_parties(
            clients, referral, change.feedback.comment.encode(), "feedback"
        )


async def cancel_for_withdrawal(
    *,
    session: AsyncSession,
    subject_ref: str,
    consent_id: str,
    subject_key: bytes,
    request_id: str | None,
) -> list[uuid.UUID]:
    """Cancel every active referral resting on a withdrawn consent and tell both parties."""
    digest = subject_digest(subject_ref, subject_key)
    # The same lock as creation: a referral being created now is committed before we look.
    await repository.lock_subject(session, subject_digest=digest)
    cancelled = []
    now = utcnow()
    for referral in await repository.open_for_subject(
        session, subject_digest=digest, consent_id=consent_id
    ):
        await move(
            session,
            referral,
            to=Status.CANCELLED,
            reason=ReasonCode.CONSENT_WITHDRAWN,
            by=None,
            now=now,
            action="referral.cancelled",
            request_id=request_id,
            details={"reason": str(ReasonCode.CONSENT_WITHDRAWN), "consent_id": consent_id},
            notify=BOTH_PARTIES,
        )
        cancelled.append(referral.id)
    return cancelled
