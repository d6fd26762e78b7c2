"""Follow-up notes: encrypted to both parties, only while the basis for sharing holds."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.basis import require_basis
from services.referral.encryption import encrypt_for_parties
from services.referral.errors import (
    KeySetChanged,
    NoteLimitReached,
    NoteTooLong,
    ReferralClosed,
    ReferralNotFound,
    SealedNoteRequired,
)
from services.referral.lifecycle import other_party, party_of, record_change
from services.referral.models import Referral, ReferralNote
from services.referral.schemas import (
    CLOSED_STATUSES,
    KeySetRead,
    NoteCreate,
    PayloadMode,
    ReasonCode,
    Status,
)
from services.referral.sealing import KeySet, check_sealed, key_set, note_aad
from services.referral.service import Clients, Context, get_visible
from shared.clock import utcnow
from shared.contracts.directory import AgreementParty
from shared.crypto import inspect_jwe
from shared.i18n import N_, Message
from shared.ids import new_id


@dataclass(frozen=True)
class NoteLimits:
    """How many notes a referral holds and how long each may be."""

    max_per_referral: int
    max_chars: int


async def _check_note(
    session: AsyncSession, referral: Referral, note_in: NoteCreate, limits: NoteLimits
) -> None:
    if (
        referral.status_reason == ReasonCode.CONSENT_WITHDRAWN
        or Status(referral.status) in CLOSED_STATUSES
    ):
        raise ReferralClosed(
            N_(
                "This referral is closed; notes can no longer be added. "
                "Start a new referral if the returnee still needs help."
            )
        )
    length = _length_of(note_in)
    if length > limits.max_chars:
        raise NoteTooLong(
            Message(
                "A note may have at most {max_chars} characters; this one has {length}. "
                "Split it into several shorter notes.",
                max_chars=limits.max_chars,
                length=length,
            ),
            max_chars=limits.max_chars,
        )
    if await repository.count_notes(session, referral_id=referral.id) >= limits.max_per_referral:
        raise NoteLimitReached(
            Message(
                "This referral already holds {max_per_referral} notes, the most one "
                "referral may hold. Put what you need to add into fewer, longer notes "
                "in your own system, or contact support if this referral really needs "
                "more.",
                max_per_referral=limits.max_per_referral,
            ),
            max_notes=limits.max_per_referral,
        )


async def add_note(
    *,
    session: AsyncSession,
    context: Context,
    referral_id: uuid.UUID,
    note_in: NoteCreate,
    clients: Clients,
    limits: NoteLimits,
) -> ReferralNote:
    """Encrypt a note to both parties and store it, while the basis for sharing holds."""
    # Locked so concurrent notes cannot pass the count together (PostgreSQL).
    referral = await get_visible(
        session, principal=context.principal, referral_id=referral_id, for_update=True
    )
    party = party_of(referral, context.principal)
    if party is None:
        raise ReferralNotFound
    await _check_note(session, referral, note_in, limits)
    await require_basis(clients, referral, context.request_id)
    body = await _body_of(clients, referral, note_in)
    note = ReferralNote(
        id=new_id(),
        referral_id=referral.id,
        author_org_id=uuid.UUID(context.principal.org_id),
        author_client_id=context.principal.client_id,
        kind=note_in.kind,
        body=body,
        created_at=utcnow(),
    )
    session.add(note)
    await record_change(
        session,
        referral,
        now=note.created_at,
        action="referral.note-added",
        actor=context.principal,
        request_id=context.request_id,
        details={"note_id": str(note.id), "kind": note.kind},
        event="referral.note-added",
        notify=(other_party(party),),
    )
    return note


def _length_of(note_in: NoteCreate) -> int:
    if note_in.text is not None:
        return len(note_in.text)
    # Sealed: the plaintext length is unknown; UTF-8 needs at least one byte per character.
    return inspect_jwe(note_in.sealed or {}).ciphertext_bytes // 4


async def _body_of(clients: Clients, referral: Referral, note_in: NoteCreate) -> dict[str, Any]:
    """The stored JWE: sealed by the writer (checked), or encrypted here from the text."""
    if note_in.sealed is None:
        if referral.payload_mode == PayloadMode.SEALED:
            raise SealedNoteRequired
        return await encrypt_for_parties(clients, referral, (note_in.text or "").encode(), "note")
    keys = await current_keys(clients, referral)
    if note_in.key_set_fingerprint != keys.fingerprint():
        raise KeySetChanged(
            Message(
                "The parties' encryption keys changed since you fetched them (a key was added, "
                "rotated or revoked). Fetch GET /referrals/{{id}}/keys again and seal the note "
                "to its keys."
            )
        )
    check_sealed(
        note_in.sealed,
        keys=keys,
        aad=note_aad(referral.id),
        label=Message("The sealed note"),
    )
    return note_in.sealed


async def current_keys(clients: Clients, referral: Referral) -> KeySet:
    """Both parties' keys valid now, as the directory lists them."""
    recipient, sender = await asyncio.gather(
        clients.directory.jwks(referral.recipient_org_id),
        clients.directory.jwks(referral.sender_org_id),
    )
    return key_set(
        AgreementParty(organisation_id=referral.recipient_org_id, webhook_url=None, keys=recipient),
        AgreementParty(organisation_id=referral.sender_org_id, webhook_url=None, keys=sender),
    )


async def party_keys(
    *, session: AsyncSession, context: Context, referral_id: uuid.UUID, clients: Clients
) -> KeySetRead:
    """Return the keys a party must seal a note to now (parties only)."""
    referral = await get_visible(session, principal=context.principal, referral_id=referral_id)
    if party_of(referral, context.principal) is None:
        raise ReferralNotFound
    keys = await current_keys(clients, referral)
    return KeySetRead(keys=list(keys.keys), key_set_fingerprint=keys.fingerprint())
