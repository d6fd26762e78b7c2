"""Sending a referral: resolve, decide, minimise, encrypt, record, all or nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository, timing
from services.referral.audit import append_audit
from services.referral.encryption import referral_aad
from services.referral.errors import (
    DuplicateActiveReferral,
    IdempotencyKeyReused,
    NoRecipientKey,
    NothingToShare,
    RecipientNotAccepting,
    ReservationUsed,
    SealedModeRequired,
)
from services.referral.lifecycle import Party
from services.referral.models import IdempotencyRecord, Referral
from services.referral.notifications import enqueue
from services.referral.schemas import (
    PayloadMode,
    ReferralCreate,
    ReferralRead,
    ReferralRequest,
    SealedReferralCreate,
    Status,
    Urgency,
)
from services.referral.sealing import (
    Reservation,
    check_sealed,
    key_set,
    read_reservation,
    require_permitted,
    require_same_keys,
    section_aad,
)
from services.referral.service import Clients, Context, subject_digest
from services.referral.shaping import to_read
from services.referral.sharing import SharingDecision, decide_sharing
from services.referral.sla import sla_deadlines
from shared.canonical import canonical_json, sha256_hex
from shared.clock import utcnow
from shared.contracts.consent import Decision, DecisionRequest, DisclosureCreate
from shared.contracts.directory import Resolution, ResolvedService
from shared.crypto import encrypt_for
from shared.i18n import N_, Message
from shared.ids import new_id
from shared.vocabulary import DataCategory, Pathway


def request_digest(referral_in: ReferralRequest) -> str:
    """Digest of a create request, to tell a retry from a different request."""
    return sha256_hex(canonical_json(referral_in.model_dump(mode="json")))


@dataclass(frozen=True)
class Sealed:
    """The referral's id and payload, however they were made."""

    referral_id: uuid.UUID
    payload: dict[str, Any]
    mode: PayloadMode
    shared: frozenset[DataCategory]


# Runs in the send's transaction once the new referral is stored (onward referrals link it).
AfterSend = Callable[[AsyncSession, Referral], Awaitable[None]]


class Sealer(Protocol):
    """How a send turns the decision into a stored payload (server side or by the sender)."""

    def admit(self, context: Context) -> None:
        """Refuse the request before any upstream call."""

    async def seal(
        self, session: AsyncSession, resolved: Resolution, sharing: SharingDecision
    ) -> Sealed:
        """Return the payload to store under `resolved` and `sharing`."""


async def create(
    *,
    session: AsyncSession,
    context: Context,
    referral_in: ReferralCreate,
    clients: Clients,
    idempotency_key: str | None,
    after: AfterSend | None = None,
) -> tuple[ReferralRead, bool]:
    """Send a referral; return it and whether it was created now (False: an idempotent replay)."""
    present = referral_in.casefile.present_categories()
    return await _send(
        session,
        context,
        referral_in,
        clients,
        idempotency_key,
        present,
        ServerSide(referral_in),
        after,
    )


async def create_sealed(
    *,
    session: AsyncSession,
    context: Context,
    sealed_in: SealedReferralCreate,
    clients: Clients,
    idempotency_key: str | None,
    after: AfterSend | None = None,
) -> tuple[ReferralRead, bool]:
    """Store a referral whose sections the sender sealed, after checking every envelope."""
    return await _send(
        session,
        context,
        sealed_in,
        clients,
        idempotency_key,
        set(sealed_in.sections),
        SenderSealed(sealed_in),
        after,
    )


async def _send(
    session: AsyncSession,
    context: Context,
    referral_in: ReferralCreate | SealedReferralCreate,
    clients: Clients,
    idempotency_key: str | None,
    present: set[DataCategory],
    sealer: Sealer,
    after: AfterSend | None = None,
) -> tuple[ReferralRead, bool]:
    principal = context.principal
    sender_org = uuid.UUID(principal.org_id)
    digest = request_digest(referral_in)
    if idempotency_key:
        replay = await _replay(session, sender_org=sender_org, key=idempotency_key, digest=digest)
        if replay is not None:
            return to_read(replay, principal), False
    sealer.admit(context)
    timing.check_start_after(referral_in.start_after, utcnow())
    resolved, decision = await resolve_and_decide(context, referral_in, clients)
    sharing = sharing_for(referral_in, resolved, decision, present)
    await timing.check_within_basis(clients, decision, referral_in.start_after, context.request_id)
    sealed = await sealer.seal(session, resolved, sharing)
    subject = subject_digest(referral_in.subject_ref, context.subject_key)
    referral = _new_referral(context, referral_in, resolved, decision, sharing, subject, sealed)
    await repository.lock_subject(session, subject_digest=subject)
    if idempotency_key:
        claimed = await _claim_key(
            session, sender_org=sender_org, key=idempotency_key, digest=digest, referral=referral
        )
        if claimed is not None:  # a concurrent identical request won the race
            return to_read(claimed, principal), False
    await _refuse_duplicate(session, subject=subject, referral_in=referral_in, referral=referral)
    await _record_disclosure(clients, context, referral_in, referral, resolved.service)
    session.add(referral)
    await _flush_new(session, sealed)
    await append_audit(
        session,
        action="referral.created",
        actor=principal,
        referral_id=referral.id,
        request_id=context.request_id,
        details={
            "shared": referral.shared_categories,
            "basis": referral.basis,
            "agreement_id": str(referral.agreement_id),
            "payload_mode": referral.payload_mode,
        },
    )
    enqueue(session, referral, "referral.requested", to=(Party.RECIPIENT,))
    if after is not None:
        await after(session, referral)
    return to_read(referral, principal), True


async def _flush_new(session: AsyncSession, sealed: Sealed) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # Only a reserved id can collide: two sends raced with one preview.
        if sealed.mode is PayloadMode.SEALED:
            raise ReservationUsed from None
        raise


class ServerSide:
    """Server mode: minimise the plaintext case file here, then encrypt it to both parties."""

    def __init__(self, referral_in: ReferralCreate) -> None:
        self.referral_in = referral_in

    def admit(self, context: Context) -> None:
        """Nothing to check before resolving."""

    async def seal(
        self, session: AsyncSession, resolved: Resolution, sharing: SharingDecision
    ) -> Sealed:
        """Minimise and encrypt the case file; the agreement may forbid this mode."""
        if resolved.agreement.sealed_required:
            raise SealedModeRequired
        referral_id = new_id()
        keys = key_set(resolved.recipient, resolved.sender)
        minimised = self.referral_in.casefile.minimised(set(sharing.shared))
        payload = encrypt_for(
            minimised.model_dump_json(exclude_none=True).encode(),
            [key.jwk for key in keys.keys],
            aad=referral_aad(referral_id),
        )
        return Sealed(referral_id, payload, PayloadMode.SERVER, sharing.shared)


class SenderSealed:
    """Sealed mode: check the sender's envelopes against the preview; never decrypt them."""

    def __init__(self, sealed_in: SealedReferralCreate) -> None:
        self.sealed_in = sealed_in
        self.reservation: Reservation | None = None

    def admit(self, context: Context) -> None:
        """Verify the reservation before anything else is asked."""
        self.reservation = read_reservation(
            self.sealed_in.reservation, context, self.sealed_in, now=utcnow()
        )

    async def seal(
        self, session: AsyncSession, resolved: Resolution, sharing: SharingDecision
    ) -> Sealed:
        """Check labels, key set, recipients and AAD of every section; store them as sent."""
        assert self.reservation is not None
        referral_id = self.reservation.referral_id
        sections = self.sealed_in.sections
        require_permitted(set(sections), sharing)
        if await repository.get(session, referral_id=referral_id) is not None:
            raise ReservationUsed
        keys = key_set(resolved.recipient, resolved.sender)
        require_same_keys(self.reservation, keys)
        for category, jwe in sorted(sections.items()):
            check_sealed(
                jwe,
                keys=keys,
                aad=section_aad(referral_id, category),
                label=Message("Section {category}", category=str(category)),
            )
        payload = {"sections": {str(c): jwe for c, jwe in sorted(sections.items())}}
        return Sealed(referral_id, payload, PayloadMode.SEALED, frozenset(sections))


async def _claim_key(
    session: AsyncSession, *, sender_org: uuid.UUID, key: str, digest: str, referral: Referral
) -> Referral | None:
    """Reserve the Idempotency-Key before anything is disclosed; None when this request owns it.

    On PostgreSQL a concurrent request with the same key waits on the unique index until the
    first one commits, then fails here and replays the first answer instead.
    """
    record = IdempotencyRecord(
        id=new_id(),
        sender_org_id=sender_org,
        key=key,
        request_digest=digest,
        referral_id=referral.id,
        created_at=referral.created_at,
    )
    try:
        async with session.begin_nested():
            session.add(record)
    except IntegrityError:
        replay = await _replay(session, sender_org=sender_org, key=key, digest=digest)
        if replay is None:
            raise
        return replay
    return None


async def _record_disclosure(
    clients: Clients,
    context: Context,
    referral_in: ReferralRequest,
    referral: Referral,
    service: ResolvedService,
) -> None:
    """Record the disclosure; consent refuses it if the basis ended since the decision."""
    await clients.consent.record_disclosure(
        DisclosureCreate(
            purpose=referral_in.purpose,
            service_category=service.category,
            recipient_country=service.country,
            referral_id=referral.id,
            subject_ref=referral_in.subject_ref,
            sender_org_id=context.principal.org_id,
            recipient_org_id=str(referral.recipient_org_id),
            categories=[DataCategory(c) for c in referral.shared_categories],
            basis=referral.basis,
            consent_ids=[uuid.UUID(c) for c in referral.consent_ids],
            override_id=uuid.UUID(referral.override_id) if referral.override_id else None,
        ),
        request_id=context.request_id,
    )


async def _replay(
    session: AsyncSession, *, sender_org: uuid.UUID, key: str, digest: str
) -> Referral | None:
    record = await repository.find_idempotency(session, sender_org_id=sender_org, key=key)
    if record is None:
        return None
    if record.request_digest != digest:
        raise IdempotencyKeyReused
    return await repository.get(session, referral_id=record.referral_id)


async def resolve_and_decide(
    context: Context, referral_in: ReferralRequest, clients: Clients
) -> tuple[Resolution, Decision]:
    """Ask the directory and consent; concurrently once the recipient is known."""
    resolve = clients.directory.resolve(
        sender_org=uuid.UUID(context.principal.org_id),
        service_id=referral_in.service_id,
        purpose=referral_in.purpose,
        programme=referral_in.programme,
        request_id=context.request_id,
    )
    known = clients.recipients.get(referral_in.service_id)
    if known is None:
        resolved = await resolve
        decision = await _decide(context, referral_in, clients, resolved.service)
    else:
        resolved, decision = await asyncio.gather(
            resolve, _decide(context, referral_in, clients, known)
        )
        if _recipient_of(resolved.service) != _recipient_of(known):
            decision = await _decide(context, referral_in, clients, resolved.service)
    clients.recipients[referral_in.service_id] = resolved.service
    _check_recipient(resolved)
    return resolved, decision


def _recipient_of(service: ResolvedService) -> tuple[uuid.UUID, str, str]:
    return service.organisation_id, service.category, service.country


async def _decide(
    context: Context, referral_in: ReferralRequest, clients: Clients, service: ResolvedService
) -> Decision:
    return await clients.consent.decide(
        DecisionRequest(
            subject_ref=referral_in.subject_ref,
            sender_org_id=context.principal.org_id,
            recipient_org_id=str(service.organisation_id),
            recipient_country=service.country,
            service_category=service.category,
            purpose=referral_in.purpose,
            requested_categories=list(referral_in.requested_categories),
        ),
        request_id=context.request_id,
    )


def _check_recipient(resolved: Resolution) -> None:
    if not resolved.service.accepting_referrals:
        raise RecipientNotAccepting
    if not resolved.recipient.keys.keys:
        raise NoRecipientKey(
            N_(
                "The provider has no valid encryption key registered, so nothing can be sent to it "
                "securely. Ask the provider to register a key in the directory."
            )
        )
    if not resolved.sender.keys.keys:
        raise NoRecipientKey(
            N_(
                "Your organisation has no valid encryption key registered, so you could not read "
                "your own referral. Register a key (refex keys generate), then resend."
            )
        )


def sharing_for(
    referral_in: ReferralRequest,
    resolved: Resolution,
    decision: Decision,
    present: set[DataCategory],
) -> SharingDecision:
    """Decide what may be shared; refuse (422) when nothing may."""
    sharing = decide_sharing(
        requested=referral_in.requested_categories,
        permitted_by_sop=[DataCategory(c) for c in resolved.agreement.permitted_categories],
        consented=decision.permitted_categories,
        present=present,
    )
    if not sharing.shared:
        reasons = ", ".join(f"{c} ({r})" for c, r in sorted(sharing.withheld.items()))
        raise NothingToShare(
            Message(
                "None of the requested categories may be shared: {reasons}. Record the "
                "returnee's consent for what the provider needs, or check the "
                "agreement, then resend.",
                reasons=reasons,
            ),
            withheld=[
                {"category": str(c), "reason": str(r)} for c, r in sorted(sharing.withheld.items())
            ],
        )
    return sharing


async def _refuse_duplicate(
    session: AsyncSession, *, subject: str, referral_in: ReferralRequest, referral: Referral
) -> None:
    # Scoped by sender: pseudonyms are each office's own, and another office's referral id
    # must never be revealed to this one.
    existing = await repository.find_open_duplicate(
        session,
        subject_digest=subject,
        service_id=referral_in.service_id,
        recipient_org_id=referral.recipient_org_id,
        sender_org_id=referral.sender_org_id,
    )
    if existing is not None:
        raise DuplicateActiveReferral(
            Message(
                "Your organisation already has an active referral of this returnee to "
                "this service ({id}). Follow that one, or cancel it before sending a "
                "new one.",
                id=existing.id,
            ),
            existing_referral_id=str(existing.id),
        )


def _new_referral(
    context: Context,
    referral_in: ReferralRequest,
    resolved: Resolution,
    decision: Decision,
    sharing: SharingDecision,
    subject: str,
    sealed: Sealed,
) -> Referral:
    now = utcnow()
    service, agreement, focal = resolved.service, resolved.agreement, resolved.focal_point
    keys = key_set(resolved.recipient, resolved.sender)
    due = timing.clock_start(now, referral_in.start_after)
    acknowledge_by, respond_by = sla_deadlines(focal, due, Urgency(referral_in.urgency))
    first_contact = focal.first_contact_categories if focal else []
    return Referral(
        id=sealed.referral_id,
        sender_org_id=uuid.UUID(context.principal.org_id),
        sender_client_id=context.principal.client_id,
        recipient_org_id=service.organisation_id,
        service_id=referral_in.service_id,
        service_category=service.category,
        programme=agreement.programme,
        donor=resolved.programme.donor if resolved.programme else None,
        # A local or national referral comes from no host country (an onward one inherits it).
        host_country=resolved.sender.country
        if agreement.pathway == Pathway.INTERNATIONAL
        else None,
        origin_country=service.country,
        origin_area=service.admin_areas[0] if service.admin_areas else None,
        purpose=str(referral_in.purpose),
        urgency=str(referral_in.urgency),
        pathway=str(agreement.pathway),
        subject_digest=subject,
        status=str(Status.REQUESTED),
        basis=str(decision.basis),
        consent_ids=[str(c) for c in decision.consent_ids],
        override_id=str(decision.override_id) if decision.override_id else None,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        shared_categories=sorted(str(c) for c in sealed.shared),
        withheld={str(c): str(r) for c, r in sharing.withheld.items()},
        first_contact_missing=sorted(c for c in first_contact if c not in sealed.shared),
        payload=sealed.payload,
        payload_mode=str(sealed.mode),
        recipient_kids=[key.kid for key in keys.keys],
        sender_kids=keys.kids_of("sender"),
        recipient_webhook_url=resolved.recipient.webhook_url,
        sender_webhook_url=resolved.sender.webhook_url,
        focal_point_id=str(focal.id) if focal else None,
        backup_focal_point_id=_str_or_none(focal.backup_focal_point_id if focal else None),
        start_after=referral_in.start_after,
        acknowledge_by=acknowledge_by,
        respond_by=respond_by,
        created_at=now,
        updated_at=now,
        version=1,
    )


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
