"""Whether a referral may still carry data: its consent (or override) and agreement in force."""

from __future__ import annotations

import asyncio
import uuid

from services.referral.errors import BasisEnded
from services.referral.models import Referral
from services.referral.service import Clients
from shared.clock import utcnow
from shared.contracts.consent import BasisCheck
from shared.i18n import Message

BASIS_ENDED = {
    "consent-withdrawn": "The returnee withdrew the consent this referral rests on",
    "consent-expired": "The consent this referral rests on has expired",
    "override-ended": "The emergency override this referral rests on was ended",
    "override-expired": "The emergency override this referral rests on has expired (72 hours)",
    "unknown-basis": "The consent service does not know the basis this referral was sent on",
    "agreement-ended": "The agreement (SOP) this referral rests on is no longer in force",
}


async def require_basis(clients: Clients, referral: Referral, request_id: str | None) -> None:
    """Refuse (409) when the consent, override or agreement of the referral has ended."""
    check = BasisCheck(
        consent_ids=[uuid.UUID(c) for c in referral.consent_ids],
        override_id=uuid.UUID(referral.override_id) if referral.override_id else None,
        referral_id=referral.id,
    )
    basis, agreement = await asyncio.gather(
        clients.consent.check_basis(check, request_id=request_id),
        clients.directory.agreement(referral.agreement_id, request_id=request_id),
    )
    reason: str = basis.reason or "unknown-basis"
    if basis.in_force:
        in_force = agreement is not None and agreement.in_force(utcnow())
        reason = "" if in_force else "agreement-ended"
    if reason:
        raise BasisEnded(
            Message(
                "{reason}, so nothing more may be sent on it. Ask the returnee for a new "
                "consent (or the directory admin for the agreement); the sender can "
                "then cancel this referral and send a new one.",
                reason=Message(BASIS_ENDED[reason]),
            ),
            reason=reason,
        )
