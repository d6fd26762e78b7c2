"""Sending a referral: resolve, decide, minimise, encrypt, record, all or nothing."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.audit import append_audit
from services.referral.encryption import referral_aad
from services.referral.errors import (
    DuplicateActiveReferral,
    IdempotencyKeyReused,
    NoRecipientKey,
    NothingToShare,
    RecipientNotAccepting,
)
from services.referral.lifecycle import Party
from services.referral.models import IdempotencyRecord, Referral
from services.referral.notifications import enqueue
from services.referral.schemas import ReferralCreate, ReferralRead, Status, Urgency
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
from shared.vocabulary import DataCategory


def request_digest(referral_in: ReferralCreate) -> str:
    """Digest of a create request, to tell a retry from a different request."""
    return sha256_hex(canonical_json(referral_in.model_dump(mode="json")))


async def create(
    *,
    session: AsyncSession,
    context: Context,
    referral_in: ReferralCreate,
    clients: Clients,
    idempotency_key: str | None,
) -> tuple[ReferralRead, bool]:
    """Send a referral; return it and whether it was created now (False: an idempotent replay)."""
    principal = context.principal
    sender_org = uuid.UUID(principal.org_id)
    digest = request_digest(referral_in)
    if idempotency_key:
        replay = await _replay(session, sender_org=sender_org, key=idempotency_key, digest=digest)
        if replay is not None:
            return to_read(replay, principal), False
    resolved, decision = await _resolve_and_decide(context, referral_in, clients)
    sharing = _sharing(referral_in, resolved, decision)
    subject = subject_digest(referral_in.subject_ref, context.subject_key)
    referral = _new_referral(context, referral_in, resolved, decision, sharing, subject)
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
    await session.flush()
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
        },
    )
    enqueue(session, referral, "referral.requested", to=(Party.RECIPIENT,))
    return to_read(referral, principal), True


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
    referral_in: ReferralCreate,
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


async def _resolve_and_decide(
    context: Context, referral_in: ReferralCreate, clients: Clients
) -> tuple[Resolution, Decision]:
    """Ask the directory and consent; concurrently once the recipient is known."""
    resolve = clients.directory.resolve(
        sender_org=uuid.UUID(context.principal.org_id),
        service_id=referral_in.service_id,
        purpose=referral_in.purpose,
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
    context: Context, referral_in: ReferralCreate, clients: Clients, service: ResolvedService
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


def _sharing(
    referral_in: ReferralCreate, resolved: Resolution, decision: Decision
) -> SharingDecision:
    sharing = decide_sharing(
        requested=referral_in.requested_categories,
        permitted_by_sop=[DataCategory(c) for c in resolved.agreement.permitted_categories],
        consented=decision.permitted_categories,
        present=referral_in.casefile.present_categories(),
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
    session: AsyncSession, *, subject: str, referral_in: ReferralCreate, referral: Referral
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
    referral_in: ReferralCreate,
    resolved: Resolution,
    decision: Decision,
    sharing: SharingDecision,
    subject: str,
) -> Referral:
    now = utcnow()
    referral_id = new_id()
    service, agreement, focal = resolved.service, resolved.agreement, resolved.focal_point
    sender_keys = resolved.sender.keys.keys
    keys = resolved.recipient.keys.keys + sender_keys
    minimised = referral_in.casefile.minimised(set(sharing.shared))
    payload = encrypt_for(
        minimised.model_dump_json(exclude_none=True).encode(),
        [key.as_jwk() for key in keys],
        aad=referral_aad(referral_id),
    )
    acknowledge_by, respond_by = sla_deadlines(focal, now, Urgency(referral_in.urgency))
    first_contact = focal.first_contact_categories if focal else []
    return Referral(
        id=referral_id,
        sender_org_id=uuid.UUID(context.principal.org_id),
        sender_client_id=context.principal.client_id,
        recipient_org_id=service.organisation_id,
        service_id=referral_in.service_id,
        service_category=service.category,
        programme=agreement.programme,
        purpose=str(referral_in.purpose),
        urgency=str(referral_in.urgency),
        subject_digest=subject,
        status=str(Status.REQUESTED),
        basis=str(decision.basis),
        consent_ids=[str(c) for c in decision.consent_ids],
        override_id=str(decision.override_id) if decision.override_id else None,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        shared_categories=sorted(str(c) for c in sharing.shared),
        withheld={str(c): str(r) for c, r in sharing.withheld.items()},
        first_contact_missing=sorted(c for c in first_contact if c not in sharing.shared),
        payload=payload,
        recipient_kids=[k.kid for k in keys],
        sender_kids=[k.kid for k in sender_keys],
        recipient_webhook_url=resolved.recipient.webhook_url,
        sender_webhook_url=resolved.sender.webhook_url,
        focal_point_id=str(focal.id) if focal else None,
        backup_focal_point_id=_str_or_none(focal.backup_focal_point_id if focal else None),
        acknowledge_by=acknowledge_by,
        respond_by=respond_by,
        created_at=now,
        updated_at=now,
        version=1,
    )


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
