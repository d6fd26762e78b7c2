"""The decision preview of a sealed referral: what may be sent, to which keys, under which id."""

from __future__ import annotations

from datetime import timedelta

from services.referral import timing
from services.referral.creation import resolve_and_decide, sharing_for
from services.referral.schemas import (
    AgreementRef,
    ReferralPreview,
    ReferralRequest,
    WithheldCategory,
)
from services.referral.sealing import issue_reservation, key_set, section_aad
from services.referral.service import Clients, Context
from shared.clock import utcnow
from shared.ids import new_id


async def preview(
    *, context: Context, request_in: ReferralRequest, clients: Clients, ttl_s: int
) -> ReferralPreview:
    """Decide what may be shared and reserve a referral id for the sender to seal to."""
    timing.check_start_after(request_in.start_after, utcnow())
    resolved, decision = await resolve_and_decide(context, request_in, clients)
    sharing = sharing_for(request_in, resolved, decision, present=set())
    await timing.check_within_basis(clients, decision, request_in.start_after, context.request_id)
    keys = key_set(resolved.recipient, resolved.sender)
    referral_id = new_id()
    reservation, token = issue_reservation(
        context,
        request_in,
        referral_id=referral_id,
        keys=keys,
        expires_at=utcnow() + timedelta(seconds=ttl_s),
    )
    permitted = sorted(sharing.shared)
    return ReferralPreview(
        referral_id=referral_id,
        reservation=token,
        expires_at=reservation.expires_at,
        agreement=AgreementRef(id=resolved.agreement.id, version=resolved.agreement.version),
        sealed_required=resolved.agreement.sealed_required,
        permitted_categories=permitted,
        withheld=[
            WithheldCategory(category=c, reason=r) for c, r in sorted(sharing.withheld.items())
        ],
        basis=str(decision.basis),
        keys=list(keys.keys),
        key_set_fingerprint=keys.fingerprint(),
        aad={c: section_aad(referral_id, c) for c in permitted},
    )
