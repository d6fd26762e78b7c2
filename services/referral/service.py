"""The rules of referral routing: minimise, encrypt, record, and move through the lifecycle."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.audit import append_audit
from services.referral.clients import ConsentClient, DirectoryClient
from services.referral.errors import (
    BasisEnded,
    DuplicateActiveReferral,
    IdempotencyKeyReused,
    IllegalTransition,
    MissingReason,
    NoRecipientKey,
    NoteLimitReached,
    NoteTooLong,
    NothingToShare,
    RecipientNotAccepting,
    ReferralChanged,
    ReferralClosed,
    ReferralNotFound,
)
from services.referral.models import IdempotencyRecord, Referral, ReferralNote
from services.referral.notifications import enqueue
from services.referral.schemas import (
    CLOSED_STATUSES,
    AgreementRef,
    EncryptedTo,
    NoteCreate,
    ReasonCode,
    ReferralCreate,
    ReferralRead,
    Status,
    StatusChange,
    Urgency,
    WithheldCategory,
)
from services.referral.sharing import SharingDecision, decide_sharing
from shared.auth import Principal
from shared.business_hours import Schedule
from shared.canonical import canonical_json, sha256_hex
from shared.clock import utcnow
from shared.contracts.consent import BasisCheck
from shared.crypto import encrypt_for
from shared.ids import new_id
from shared.vocabulary import DataCategory, Role


class Party(StrEnum):
    """Which side of a referral a caller is on."""

    SENDER = "sender"
    RECIPIENT = "recipient"


# Who may make each move (FHIR Task codes). Anything not listed is an illegal move.
TRANSITIONS: dict[tuple[Status, Status], Party] = {
    (Status.REQUESTED, Status.RECEIVED): Party.RECIPIENT,
    (Status.REQUESTED, Status.ACCEPTED): Party.RECIPIENT,
    (Status.RECEIVED, Status.ACCEPTED): Party.RECIPIENT,
    (Status.REQUESTED, Status.REJECTED): Party.RECIPIENT,
    (Status.RECEIVED, Status.REJECTED): Party.RECIPIENT,
    (Status.ACCEPTED, Status.IN_PROGRESS): Party.RECIPIENT,
    (Status.ACCEPTED, Status.COMPLETED): Party.RECIPIENT,
    (Status.IN_PROGRESS, Status.COMPLETED): Party.RECIPIENT,
    (Status.ACCEPTED, Status.FAILED): Party.RECIPIENT,
    (Status.IN_PROGRESS, Status.FAILED): Party.RECIPIENT,
    (Status.ACCEPTED, Status.ON_HOLD): Party.RECIPIENT,
    (Status.IN_PROGRESS, Status.ON_HOLD): Party.RECIPIENT,
    (Status.ON_HOLD, Status.IN_PROGRESS): Party.RECIPIENT,
    (Status.REQUESTED, Status.CANCELLED): Party.SENDER,
    (Status.RECEIVED, Status.CANCELLED): Party.SENDER,
    (Status.ACCEPTED, Status.CANCELLED): Party.SENDER,
    (Status.IN_PROGRESS, Status.CANCELLED): Party.SENDER,
    (Status.ON_HOLD, Status.CANCELLED): Party.SENDER,
    (Status.REQUESTED, Status.ENTERED_IN_ERROR): Party.SENDER,
    (Status.RECEIVED, Status.ENTERED_IN_ERROR): Party.SENDER,
}
NEEDS_REASON = frozenset({Status.REJECTED, Status.CANCELLED, Status.ON_HOLD, Status.FAILED})
PARTY_ROLES = {Party.SENDER: {Role.HOST_OFFICE}, Party.RECIPIENT: {Role.PROVIDER, Role.COORDINATOR}}
ACKNOWLEDGE_HOURS = 4.0  # business hours to confirm receipt, capped by the response time


@dataclass
class Clients:
    """The upstream services a referral needs."""

    directory: DirectoryClient
    consent: ConsentClient
    # service id -> last known service summary; only lets the consent call start early (the
    # directory's answer is always re-checked). Per app, so test apps never share it.
    recipients: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Who asks, under which request id, with which secrets."""

    principal: Principal
    request_id: str | None
    subject_key: bytes


def subject_digest(subject_ref: str, key: bytes) -> str:
    """Keyed digest of a pseudonym: finds a subject's referrals without storing the pseudonym."""
    return hmac.new(key, subject_ref.encode(), hashlib.sha256).hexdigest()


def reads_content(referral: Referral, party: Party | None) -> bool:
    """Whether this side may read the case file, feedback and notes of the referral.

    Once the returnee withdrew the consent a referral rested on, the recipient no longer gets
    them: withdrawal stops every further disclosure. The sender keeps its own referral.
    """
    if party is None:
        return False
    return not (party == Party.RECIPIENT and referral.status_reason == ReasonCode.CONSENT_WITHDRAWN)


def party_of(referral: Referral, principal: Principal) -> Party | None:
    """Return the caller's side of this referral, or None when it is not a party."""
    org = principal.org_id
    if org == str(referral.sender_org_id) and principal.has_any_role(*PARTY_ROLES[Party.SENDER]):
        return Party.SENDER
    if org == str(referral.recipient_org_id) and principal.has_any_role(
        *PARTY_ROLES[Party.RECIPIENT]
    ):
        return Party.RECIPIENT
    return None


def allowed_moves(referral: Referral, party: Party | None) -> list[Status]:
    """Statuses `party` may move the referral to from where it stands."""
    current = Status(referral.status)
    return [to for (start, to), who in TRANSITIONS.items() if start == current and who == party]


def to_read(referral: Referral, principal: Principal, now: datetime | None = None) -> ReferralRead:
    """Shape a referral for this caller: parties get the JWE, auditors metadata only."""
    party = party_of(referral, principal)
    now = now or utcnow()
    return ReferralRead(
        id=referral.id,
        version=referral.version,
        status=Status(referral.status),
        status_reason=ReasonCode(referral.status_reason) if referral.status_reason else None,
        sender_org_id=referral.sender_org_id,
        recipient_org_id=referral.recipient_org_id,
        service_id=referral.service_id,
        service_category=referral.service_category,
        programme=referral.programme,
        purpose=referral.purpose,
        urgency=Urgency(referral.urgency),
        basis=referral.basis,
        emergency=referral.basis == "emergency",
        consent_ids=referral.consent_ids,
        override_id=referral.override_id,
        agreement=AgreementRef(id=referral.agreement_id, version=referral.agreement_version),
        shared_categories=[DataCategory(c) for c in referral.shared_categories],
        withheld=[
            WithheldCategory(category=c, reason=r) for c, r in sorted(referral.withheld.items())
        ],
        warnings=_warnings(referral) + _withdrawal_notice(referral, party),
        acknowledge_by=referral.acknowledge_by,
        respond_by=referral.respond_by,
        overdue=is_overdue(referral, now),
        created_at=referral.created_at,
        updated_at=referral.updated_at,
        acknowledged_at=referral.acknowledged_at,
        accepted_at=referral.accepted_at,
        closed_at=referral.closed_at,
        outcome=referral.outcome,
        feedback_score=referral.feedback_score,
        feedback=referral.feedback if reads_content(referral, party) else None,
        allowed_moves=allowed_moves(referral, party),
        payload=referral.payload if reads_content(referral, party) else None,
        encrypted_to=_encrypted_to(referral),
    )


def _encrypted_to(referral: Referral) -> list[EncryptedTo]:
    if referral.sender_kids is None:  # made before the key owners were kept
        return [EncryptedTo(kid=kid) for kid in referral.recipient_kids]
    sender_kids = set(referral.sender_kids)
    return [
        EncryptedTo(kid=kid, party="sender", org_id=referral.sender_org_id)
        if kid in sender_kids
        else EncryptedTo(kid=kid, party="recipient", org_id=referral.recipient_org_id)
        for kid in referral.recipient_kids
    ]


def _warnings(referral: Referral) -> list[str]:
    return [
        f"The provider needs {category} at first contact, but it was withheld "
        f"({referral.withheld.get(category, 'not_requested')}). Ask the returnee for consent "
        "for it, or agree it in the SOP, then send a new referral."
        for category in referral.first_contact_missing
    ]


def _withdrawal_notice(referral: Referral, party: Party | None) -> list[str]:
    if party is None or reads_content(referral, party):
        return []
    return [
        "The returnee withdrew the consent this referral rested on: its case file, feedback and "
        "notes are no longer shared with you. Delete any copy you keep, as your agreement says."
    ]


def is_overdue(referral: Referral, now: datetime) -> bool:
    """A referral is overdue when its next deadline passed without the expected move."""
    if Status(referral.status) in CLOSED_STATUSES:
        return False
    if referral.status == Status.REQUESTED and referral.acknowledge_by:
        return now > referral.acknowledge_by
    if referral.status in (Status.REQUESTED, Status.RECEIVED) and referral.respond_by:
        return now > referral.respond_by
    return False


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
    await _record_disclosure(clients, context, referral_in, referral, resolved["service"])
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
    service: dict[str, Any],
) -> None:
    """Record the disclosure; consent refuses it if the basis ended since the decision."""
    await clients.consent.record_disclosure(
        {
            "purpose": str(referral_in.purpose),
            "service_category": service["category"],
            "recipient_country": service.get("country"),
            "referral_id": str(referral.id),
            "subject_ref": referral_in.subject_ref,
            "sender_org_id": context.principal.org_id,
            "recipient_org_id": str(referral.recipient_org_id),
            "categories": sorted(referral.shared_categories),
            "basis": referral.basis,
            "consent_ids": referral.consent_ids,
            "override_id": referral.override_id,
        },
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
) -> tuple[dict[str, Any], dict[str, Any]]:
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
        decision = await _decide(context, referral_in, clients, resolved["service"])
    else:
        resolved, decision = await asyncio.gather(
            resolve, _decide(context, referral_in, clients, known)
        )
        if _recipient_of(resolved["service"]) != _recipient_of(known):
            decision = await _decide(context, referral_in, clients, resolved["service"])
    clients.recipients[referral_in.service_id] = resolved["service"]
    _check_recipient(resolved)
    return resolved, decision


def _recipient_of(service: dict[str, Any]) -> tuple[str, str, str]:
    return service["organisation_id"], service["category"], service.get("country", "")


async def _decide(
    context: Context, referral_in: ReferralCreate, clients: Clients, service: dict[str, Any]
) -> dict[str, Any]:
    return await clients.consent.decide(
        {
            "subject_ref": referral_in.subject_ref,
            "sender_org_id": context.principal.org_id,
            "recipient_org_id": service["organisation_id"],
            "recipient_country": service.get("country"),
            "service_category": service["category"],
            "purpose": referral_in.purpose,
            "requested_categories": [str(c) for c in referral_in.requested_categories],
        },
        request_id=context.request_id,
    )


def _check_recipient(resolved: dict[str, Any]) -> None:
    if not resolved["service"].get("accepting_referrals", False):
        raise RecipientNotAccepting
    if not resolved["recipient"]["keys"].get("keys"):
        raise NoRecipientKey(
            "The provider has no valid encryption key registered, so nothing can be sent to it "
            "securely. Ask the provider to register a key in the directory."
        )
    if not resolved["sender"]["keys"].get("keys"):
        raise NoRecipientKey(
            "Your organisation has no valid encryption key registered, so you could not read "
            "your own referral. Register a key (refex keys generate), then resend."
        )


def _sharing(
    referral_in: ReferralCreate, resolved: dict[str, Any], decision: dict[str, Any]
) -> SharingDecision:
    sharing = decide_sharing(
        requested=referral_in.requested_categories,
        permitted_by_sop=[DataCategory(c) for c in resolved["agreement"]["permitted_categories"]],
        consented=[DataCategory(c) for c in decision.get("permitted_categories", [])],
        present=referral_in.casefile.present_categories(),
    )
    if not sharing.shared:
        reasons = ", ".join(f"{c} ({r})" for c, r in sorted(sharing.withheld.items()))
        raise NothingToShare(
            f"None of the requested categories may be shared: {reasons}. Record the returnee's "
            "consent for what the provider needs, or check the agreement, then resend.",
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
            "Your organisation already has an active referral of this returnee to this service "
            f"({existing.id}). Follow that one, or cancel it before sending a new one.",
            existing_referral_id=str(existing.id),
        )


def _new_referral(
    context: Context,
    referral_in: ReferralCreate,
    resolved: dict[str, Any],
    decision: dict[str, Any],
    sharing: SharingDecision,
    subject: str,
) -> Referral:
    now = utcnow()
    referral_id = new_id()
    service, agreement = resolved["service"], resolved["agreement"]
    sender_keys = resolved["sender"]["keys"]["keys"]
    keys = resolved["recipient"]["keys"]["keys"] + sender_keys
    minimised = referral_in.casefile.minimised(set(sharing.shared))
    payload = encrypt_for(
        minimised.model_dump_json(exclude_none=True).encode(), keys, aad=referral_aad(referral_id)
    )
    focal = resolved.get("focal_point") or {}
    acknowledge_by, respond_by = sla_deadlines(focal, now, Urgency(referral_in.urgency))
    return Referral(
        id=referral_id,
        sender_org_id=uuid.UUID(context.principal.org_id),
        sender_client_id=context.principal.client_id,
        recipient_org_id=uuid.UUID(service["organisation_id"]),
        service_id=referral_in.service_id,
        service_category=service["category"],
        programme=agreement.get("programme"),
        purpose=str(referral_in.purpose),
        urgency=str(referral_in.urgency),
        subject_digest=subject,
        status=str(Status.REQUESTED),
        basis=decision["basis"],
        consent_ids=[str(c) for c in decision.get("consent_ids") or []],
        override_id=str(decision["override_id"]) if decision.get("override_id") else None,
        agreement_id=uuid.UUID(agreement["id"]),
        agreement_version=int(agreement["version"]),
        shared_categories=sorted(str(c) for c in sharing.shared),
        withheld={str(c): str(r) for c, r in sharing.withheld.items()},
        first_contact_missing=sorted(
            c for c in focal.get("first_contact_categories", []) if c not in sharing.shared
        ),
        payload=payload,
        recipient_kids=[k.get("kid", "") for k in keys],
        sender_kids=[k.get("kid", "") for k in sender_keys],
        recipient_webhook_url=resolved["recipient"].get("webhook_url"),
        sender_webhook_url=resolved["sender"].get("webhook_url"),
        focal_point_id=_str_or_none(focal.get("id")),
        backup_focal_point_id=_str_or_none(focal.get("backup_focal_point_id")),
        acknowledge_by=acknowledge_by,
        respond_by=respond_by,
        created_at=now,
        updated_at=now,
        version=1,
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def referral_aad(referral_id: uuid.UUID) -> bytes:
    """Additional authenticated data binding a ciphertext to its referral."""
    return f"refex:referral:{referral_id}".encode()


def sla_deadlines(
    focal: dict[str, Any], start: datetime, urgency: Urgency
) -> tuple[datetime | None, datetime | None]:
    """Acknowledge and respond deadlines in the focal point's business hours."""
    if not focal.get("schedule") or not focal.get("response_time_hours"):
        return None, None
    schedule = Schedule.model_validate(focal["schedule"])
    respond_hours = float(focal["response_time_hours"])
    if urgency == Urgency.URGENT:
        respond_hours /= 2
    acknowledge_hours = min(ACKNOWLEDGE_HOURS, respond_hours)
    return (
        schedule.add_business_hours(start, acknowledge_hours),
        schedule.add_business_hours(start, respond_hours),
    )


async def get_visible(
    session: AsyncSession, *, principal: Principal, referral_id: uuid.UUID, for_update: bool = False
) -> Referral:
    """Return the referral if the caller's organisation is a party (or the caller an auditor)."""
    referral = await repository.get(session, referral_id=referral_id, for_update=for_update)
    if referral is None:
        raise ReferralNotFound
    if party_of(referral, principal) is None and not principal.has_any_role(Role.AUDITOR):
        raise ReferralNotFound
    return referral


async def read(*, session: AsyncSession, context: Context, referral_id: uuid.UUID) -> ReferralRead:
    """Return one referral; a party's read of the payload is audited."""
    referral = await get_visible(session, principal=context.principal, referral_id=referral_id)
    action = "referral.read" if party_of(referral, context.principal) else "referral.metadata-read"
    await append_audit(
        session,
        action=action,
        actor=context.principal,
        referral_id=referral.id,
        request_id=context.request_id,
    )
    return to_read(referral, context.principal)


def etag(referral: Referral) -> str:
    """The ETag of the referral's current version."""
    return f'"{referral.version}"'


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
    target = change.status
    if TRANSITIONS.get((Status(referral.status), target)) != party or party is None:
        allowed = allowed_moves(referral, party)
        raise IllegalTransition(
            f"A referral in status '{referral.status}' cannot be moved to '{target}' by you. "
            f"You may move it to: {', '.join(allowed) or 'nothing (no move is yours now)'}.",
            allowed=[str(s) for s in allowed],
        )
    _require_reason(change)
    if change.feedback is not None and change.feedback.comment:
        await require_basis(clients, referral, context.request_id)
    now = utcnow()
    await _apply(referral, change, now, clients)
    await append_audit(
        session,
        action=f"referral.{target}",
        actor=principal,
        referral_id=referral.id,
        request_id=context.request_id,
        details={"reason": change.reason, "outcome": change.outcome},
    )
    other = Party.SENDER if party == Party.RECIPIENT else Party.RECIPIENT
    enqueue(session, referral, "referral.status-changed", to=(other,))
    return referral


def _require_reason(change: StatusChange) -> None:
    if change.status in NEEDS_REASON and change.reason is None:
        raise MissingReason(
            f"Moving a referral to '{change.status}' needs a reason code "
            f"(field 'reason'), e.g. {ReasonCode.OTHER.value!r}."
        )
    if change.status == Status.COMPLETED and change.outcome is None:
        raise MissingReason(
            "Completing a referral needs an outcome (field 'outcome'), e.g. 'got-help'."
        )


async def _apply(referral: Referral, change: StatusChange, now: datetime, clients: Clients) -> None:
    referral.status = str(change.status)
    referral.status_reason = str(change.reason) if change.reason else None
    referral.updated_at = now
    referral.version += 1
    if change.status == Status.RECEIVED:
        referral.acknowledged_at = now
    if change.status == Status.ACCEPTED:
        referral.acknowledged_at = referral.acknowledged_at or now
        referral.accepted_at = now
    if change.status in CLOSED_STATUSES:
        referral.closed_at = now
    if change.status == Status.COMPLETED:
        referral.outcome = str(change.outcome)
        if change.feedback is not None:
            referral.feedback_score = change.feedback.score
            if change.feedback.comment:
                referral.feedback = await _encrypt_for_parties(
                    clients, referral, change.feedback.comment.encode(), "feedback"
                )


async def _encrypt_for_parties(
    clients: Clients, referral: Referral, plaintext: bytes, purpose: str
) -> dict[str, Any]:
    recipient, sender = await asyncio.gather(
        clients.directory.jwks(referral.recipient_org_id),
        clients.directory.jwks(referral.sender_org_id),
    )
    keys = recipient.get("keys", []) + sender.get("keys", [])
    if not keys:
        raise NoRecipientKey("Neither party has a valid encryption key; register one first.")
    aad = f"refex:{purpose}:{referral.id}".encode()
    return encrypt_for(plaintext, keys, aad=aad)


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
    reason = basis.reason or "unknown-basis"
    if basis.in_force:
        reason = "" if _agreement_in_force(agreement, utcnow()) else "agreement-ended"
    if reason:
        raise BasisEnded(
            f"{BASIS_ENDED[reason]}, so nothing more may be sent on it. Ask the returnee for a "
            "new consent (or the directory admin for the agreement); the sender can then cancel "
            "this referral and send a new one.",
            reason=reason,
        )


def _agreement_in_force(agreement: dict[str, Any] | None, now: datetime) -> bool:
    if agreement is None:
        return False
    valid_until = agreement.get("valid_until")
    started = datetime.fromisoformat(agreement["valid_from"]) <= now
    return started and (valid_until is None or now < datetime.fromisoformat(valid_until))


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
            "This referral is closed; notes can no longer be added. "
            "Start a new referral if the returnee still needs help."
        )
    if len(note_in.text) > limits.max_chars:
        raise NoteTooLong(
            f"A note may have at most {limits.max_chars} characters; this one has "
            f"{len(note_in.text)}. Split it into several shorter notes.",
            max_chars=limits.max_chars,
        )
    if await repository.count_notes(session, referral_id=referral.id) >= limits.max_per_referral:
        raise NoteLimitReached(
            f"This referral already holds {limits.max_per_referral} notes, the most one referral "
            "may hold. Put what you need to add into fewer, longer notes in your own system, "
            "or contact support if this referral really needs more.",
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
    if party_of(referral, context.principal) is None:
        raise ReferralNotFound
    await _check_note(session, referral, note_in, limits)
    await require_basis(clients, referral, context.request_id)
    body = await _encrypt_for_parties(clients, referral, note_in.text.encode(), "note")
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
    referral.updated_at = note.created_at
    referral.version += 1
    await append_audit(
        session,
        action="referral.note-added",
        actor=context.principal,
        referral_id=referral.id,
        request_id=context.request_id,
        details={"note_id": str(note.id), "kind": note.kind},
    )
    party = party_of(referral, context.principal)
    other = Party.SENDER if party == Party.RECIPIENT else Party.RECIPIENT
    enqueue(session, referral, "referral.note-added", to=(other,))
    return note


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
        referral.status = str(Status.CANCELLED)
        referral.status_reason = str(ReasonCode.CONSENT_WITHDRAWN)
        referral.updated_at = referral.closed_at = now
        referral.version += 1
        await append_audit(
            session,
            action="referral.cancelled",
            actor=None,
            referral_id=referral.id,
            request_id=request_id,
            details={"reason": str(ReasonCode.CONSENT_WITHDRAWN), "consent_id": consent_id},
        )
        enqueue(session, referral, "referral.status-changed", to=(Party.SENDER, Party.RECIPIENT))
        cancelled.append(referral.id)
    return cancelled
