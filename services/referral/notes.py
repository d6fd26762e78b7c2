"""Follow-up notes: encrypted to both parties, only while the basis for sharing holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.basis import require_basis
from services.referral.encryption import encrypt_for_parties
from services.referral.errors import (
    NoteLimitReached,
    NoteTooLong,
    ReferralClosed,
    ReferralNotFound,
)
from services.referral.lifecycle import other_party, party_of, record_change
from services.referral.models import Referral, ReferralNote
from services.referral.schemas import CLOSED_STATUSES, NoteCreate, ReasonCode, Status
from services.referral.service import Clients, Context, get_visible
from shared.clock import utcnow
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
    if len(note_in.text) > limits.max_chars:
        raise NoteTooLong(
            Message(
                "A note may have at most {max_chars} characters; this one has {length}. "
                "Split it into several shorter notes.",
                max_chars=limits.max_chars,
                length=len(note_in.text),
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
    body = await encrypt_for_parties(clients, referral, note_in.text.encode(), "note")
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
