"""Onward referral: a recipient that cannot serve passes the case on to another provider.

The new referral is sent like any other, by the recipient as its sender, under the recipient's
own agreement with the new provider and a consent the recipient recorded, from the case file the
recipient decrypted itself; it may ask only for categories the referral received carried. The
referral received then closes as `referred-elsewhere`, naming the new one and to whom it went.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import creation, repository
from services.referral.errors import BeyondOriginalReferral, NotTheRecipient, ReferralClosed
from services.referral.lifecycle import Party, party_of, record_change
from services.referral.models import Referral
from services.referral.schemas import (
    CLOSED_STATUSES,
    Outcome,
    ReferralCreate,
    ReferralRead,
    ReferralRequest,
    SealedReferralCreate,
    Status,
)
from services.referral.service import Clients, Context, get_visible
from shared.clock import utcnow
from shared.i18n import Message


async def pass_on(
    *,
    session: AsyncSession,
    context: Context,
    referral_id: uuid.UUID,
    onward_in: ReferralCreate | SealedReferralCreate,
    clients: Clients,
    idempotency_key: str | None,
) -> tuple[ReferralRead, bool]:
    """Send the case on to another provider; return the new referral and whether it is new.

    The case file comes in the clear (refex minimises and encrypts it) or sealed by the
    provider's own system section by section, as for any referral.
    """
    principal = context.principal
    original = await get_visible(
        session, principal=principal, referral_id=referral_id, for_update=True
    )
    if party_of(original, principal) != Party.RECIPIENT:
        raise NotTheRecipient
    # A retry with a used key gets creation's answer: the first result, or 422 for another body.
    retry = await _key_used(session, context, idempotency_key)
    if not retry:
        _require_open(original)
        _require_within(original, onward_in)

    async def link(session: AsyncSession, onward: Referral) -> None:
        await _link(session, context, original, onward)

    after = None if retry else link
    if isinstance(onward_in, SealedReferralCreate):
        return await creation.create_sealed(
            session=session,
            context=context,
            sealed_in=onward_in,
            clients=clients,
            idempotency_key=idempotency_key,
            after=after,
        )
    return await creation.create(
        session=session,
        context=context,
        referral_in=onward_in,
        clients=clients,
        idempotency_key=idempotency_key,
        after=after,
    )


async def _key_used(session: AsyncSession, context: Context, key: str | None) -> bool:
    if key is None:
        return False
    sender_org = uuid.UUID(context.principal.org_id)
    return await repository.find_idempotency(session, sender_org_id=sender_org, key=key) is not None


def _require_open(original: Referral) -> None:
    if Status(original.status) not in CLOSED_STATUSES:
        return
    raise ReferralClosed(
        Message(
            "This referral is closed ({status}), so it can no longer be passed on. "
            "If the returnee still needs a service, send a new referral with POST /referrals.",
            status=original.status,
        )
    )


def _require_within(original: Referral, onward_in: ReferralRequest) -> None:
    """Refuse asking for a category the referral received did not carry; nothing is sent."""
    carried = set(original.shared_categories)
    beyond = sorted(str(c) for c in onward_in.requested_categories if str(c) not in carried)
    if not beyond:
        return
    raise BeyondOriginalReferral(
        Message(
            "The referral you received carried only {carried}, so passing it on cannot ask "
            "for {beyond}. Remove them from requested_categories, then resend. Nothing was "
            "sent.",
            carried=", ".join(sorted(carried)),
            beyond=", ".join(beyond),
        ),
        categories=beyond,
    )


async def _link(
    session: AsyncSession, context: Context, original: Referral, onward: Referral
) -> None:
    """Link the new referral to the one received and close that one as referred elsewhere."""
    now = utcnow()
    onward.based_on_id = original.id
    # Reports follow the case from where it came, not from the provider passing it on.
    onward.host_country = original.host_country
    original.status = str(Status.COMPLETED)
    original.status_reason = None
    original.outcome = str(Outcome.REFERRED_ELSEWHERE)
    original.acknowledged_at = original.acknowledged_at or now
    original.closed_at = now
    original.onward_referral_id = onward.id
    original.onward_org_id = onward.recipient_org_id
    original.onward_service_id = onward.service_id
    original.onward_service_category = onward.service_category
    await record_change(
        session,
        original,
        now=now,
        action="referral.passed-on",
        actor=context.principal,
        request_id=context.request_id,
        details={
            "onward_referral_id": str(onward.id),
            "onward_org_id": str(onward.recipient_org_id),
            "outcome": str(Outcome.REFERRED_ELSEWHERE),
        },
        event="referral.status-changed",
        notify=(Party.SENDER,),
    )
