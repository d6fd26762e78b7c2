"""What refex encrypts for both parties itself: notes and feedback, bound to their referral."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from services.referral.errors import NoRecipientKey
from services.referral.models import Referral
from services.referral.service import Clients
from shared.crypto import encrypt_for
from shared.i18n import N_


def referral_aad(referral_id: uuid.UUID) -> bytes:
    """Additional authenticated data binding a ciphertext to its referral."""
    return f"refex:referral:{referral_id}".encode()


async def encrypt_for_parties(
    clients: Clients, referral: Referral, plaintext: bytes, purpose: str
) -> dict[str, Any]:
    """Encrypt to both parties' keys valid now (JWE), bound to the referral and its purpose."""
    recipient, sender = await asyncio.gather(
        clients.directory.jwks(referral.recipient_org_id),
        clients.directory.jwks(referral.sender_org_id),
    )
    keys = [key.as_jwk() for key in recipient.keys + sender.keys]
    if not keys:
        raise NoRecipientKey(N_("Neither party has a valid encryption key; register one first."))
    aad = f"refex:{purpose}:{referral.id}".encode()
    return encrypt_for(plaintext, keys, aad=aad)
