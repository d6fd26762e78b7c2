"""The rules of consent: recording, withdrawal, decisions, disclosures and emergency overrides.

Every write first locks the ledger, so writes are serialised: checks such as "already withdrawn"
or "already recorded for this referral" cannot race, and ledger events keep one order.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.consent import ledger as transparency_log
from services.consent import repository
from services.consent.clients import DirectoryClient
from services.consent.errors import (
    AlreadyWithdrawn,
    AttestingOrganisationMismatch,
    BasisNoLongerValid,
    ConsentNotFound,
    DisclosureOutsideBasis,
    FreshAttestationNeeded,
    LedgerRangeInvalid,
    NotYourOrganisation,
    OverrideNotAllowed,
    OverrideNotFound,
    OverrideOutsideAgreement,
    OverrideRequestExpired,
    OverrideStateConflict,
    SelfAttestation,
    UnknownBasis,
)
from services.consent.ledger import InclusionProof, Ledger
from services.consent.models import (
    Consent,
    Disclosure,
    EmergencyOverride,
    LedgerEntry,
    OutboxEvent,
    TreeHead,
)
from services.consent.receipts import receipt_text
from services.consent.schemas import (
    Basis,
    ConsentCreate,
    ConsentReceiptRead,
    ConsentStatus,
    Decision,
    DecisionRequest,
    DisclosureCreate,
    OrganisationGrantee,
    OverrideAttest,
    OverrideCreate,
    OverrideEnd,
    OverrideStatus,
    WithdrawalCreate,
)
from services.consent.settings import ConsentSettings
from services.consent.signing import TreeHeadSigner
from shared import outbox
from shared.auth import Principal
from shared.clock import utcnow
from shared.contracts.consent import BasisCheck, BasisEndReason, BasisStatus, WithdrawalNotice
from shared.errors import Conflict
from shared.i18n import N_, Message
from shared.ids import new_id
from shared.vocabulary import DataCategory, Purpose, Role, WithheldReason

WITHDRAWAL_EVENT = "consent.withdrawn"


def _can_read_all(principal: Principal) -> bool:
    return principal.has_any_role(Role.AUDITOR)


def consent_status(consent: Consent, now: datetime) -> ConsentStatus:
    """Return whether the consent counts at `now`."""
    if consent.withdrawn_at is not None:
        return ConsentStatus.WITHDRAWN
    if now < consent.valid_from:
        return ConsentStatus.NOT_YET_VALID
    if now >= consent.valid_until:
        return ConsentStatus.EXPIRED
    return ConsentStatus.ACTIVE


def grantee_data(consent: Consent) -> dict[str, Any]:
    if consent.grantee_org_id is not None:
        return {"kind": "organisation", "org_id": consent.grantee_org_id}
    return {
        "kind": "service_category",
        "service_category": consent.grantee_service_category,
        "country": consent.grantee_country,
    }


async def create_consent(
    *,
    session: AsyncSession,
    principal: Principal,
    consent_in: ConsentCreate,
    settings: ConsentSettings,
) -> Consent:
    """Record a consent and its ledger event."""
    ledger = await Ledger.lock(session)
    now = utcnow()
    grantee = consent_in.grantee
    consent = Consent(
        id=new_id(),
        subject_ref=consent_in.subject_ref,
        grantor=consent_in.grantor.value,
        grantee_org_id=grantee.org_id if isinstance(grantee, OrganisationGrantee) else None,
        grantee_service_category=None
        if isinstance(grantee, OrganisationGrantee)
        else grantee.service_category.value,
        grantee_country=None if isinstance(grantee, OrganisationGrantee) else grantee.country,
        purpose=consent_in.purpose.value,
        categories=[c.value for c in consent_in.categories],
        valid_from=consent_in.valid_from or now,
        valid_until=consent_in.valid_until,
        evidence_method=consent_in.evidence.method.value,
        evidence_sha256=consent_in.evidence.form_sha256,
        language=consent_in.language,
        recorded_by_org=principal.org_id,
        recorded_by_client=principal.client_id,
        recorded_at=now,
        expiry_recorded=False,
    )
    consent.ledger_index = await ledger.append(
        event_type="consent.granted",
        data=_consent_event(consent),
        at=now,
        retain_days=settings.ledger_retention_days,
    )
    session.add(consent)
    await session.flush()
    return consent


def _consent_event(consent: Consent) -> dict[str, Any]:
    return {
        "consent_id": consent.id,
        "subject_ref": consent.subject_ref,
        "grantor": consent.grantor,
        "grantee": grantee_data(consent),
        "purpose": consent.purpose,
        "categories": consent.categories,
        "valid_from": consent.valid_from,
        "valid_until": consent.valid_until,
        "evidence": {"method": consent.evidence_method, "form_sha256": consent.evidence_sha256},
        "language": consent.language,
        "recorded_by_org": consent.recorded_by_org,
        "recorded_by_client": consent.recorded_by_client,
    }


async def get_consent(
    *, session: AsyncSession, principal: Principal, consent_id: uuid.UUID
) -> Consent:
    """Return a consent the caller's organisation recorded (auditors: any)."""
    consent = await repository.get_consent(session=session, consent_id=consent_id)
    if consent is None:
        raise ConsentNotFound
    if consent.recorded_by_org != principal.org_id and not _can_read_all(principal):
        raise ConsentNotFound
    return consent


async def get_receipt(
    *, session: AsyncSession, principal: Principal, consent_id: uuid.UUID
) -> ConsentReceiptRead:
    """The consent's receipt for the recording office, auditors and admins."""
    consent = await repository.get_consent(session=session, consent_id=consent_id)
    may_read = consent is not None and (
        consent.recorded_by_org == principal.org_id
        or principal.has_any_role(Role.AUDITOR, Role.ADMIN)
    )
    if consent is None or not may_read:
        raise ConsentNotFound
    language, text = receipt_text(consent)
    return ConsentReceiptRead(
        consent_id=consent.id,
        language=language,
        ledger_index=consent.ledger_index,
        status=consent_status(consent, utcnow()),
        categories=[DataCategory(c) for c in consent.categories],
        purpose=Purpose(consent.purpose),
        valid_until=consent.valid_until,
        text=text,
    )


async def withdraw_consent(
    *,
    session: AsyncSession,
    principal: Principal,
    consent_id: uuid.UUID,
    withdrawal_in: WithdrawalCreate,
    settings: ConsentSettings,
) -> Consent:
    """Withdraw a consent at once; the ledger event and the outbox row share the transaction."""
    ledger = await Ledger.lock(session)
    consent = await repository.get_consent(session=session, consent_id=consent_id)
    if consent is None or consent.recorded_by_org != principal.org_id:
        raise ConsentNotFound
    if consent.withdrawn_at is not None:
        raise AlreadyWithdrawn
    now = utcnow()
    consent.withdrawn_at = now
    consent.withdrawal_reason = withdrawal_in.reason.value
    consent.withdrawn_by_client = principal.client_id
    await ledger.append(
        event_type=WITHDRAWAL_EVENT,
        data={
            "consent_id": consent.id,
            "subject_ref": consent.subject_ref,
            "reason": consent.withdrawal_reason,
            "withdrawn_by_org": principal.org_id,
            "withdrawn_by_client": principal.client_id,
        },
        at=now,
        retain_days=settings.ledger_retention_days,
    )
    session.add(_withdrawal_notice(consent, now))
    await session.flush()
    return consent


def _withdrawal_notice(consent: Consent, now: datetime) -> OutboxEvent:
    event_id = new_id()
    notice = WithdrawalNotice(
        event_id=event_id,
        consent_id=consent.id,
        subject_ref=consent.subject_ref,
        sender_org_id=consent.recorded_by_org,
        withdrawn_at=now,
        reason=consent.withdrawal_reason,
    )
    payload = notice.model_dump(mode="json")
    return OutboxEvent(
        id=event_id,
        kind=WITHDRAWAL_EVENT,
        payload=payload,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )


def _sender_of(principal: Principal, requested: str | None) -> str | None:
    if principal.has_any_role(Role.INTERNAL_CALLER):
        return requested
    if requested is not None and requested != principal.org_id:
        raise NotYourOrganisation
    return principal.org_id


async def decide(
    *, session: AsyncSession, principal: Principal, request: DecisionRequest
) -> Decision:
    """Answer which requested categories may be disclosed; refusal is the default."""
    now = utcnow()
    sender = _sender_of(principal, request.sender_org_id)
    requested = [c.value for c in request.requested_categories]
    override = await repository.active_override(
        session=session,
        subject_ref=request.subject_ref,
        recipient_org=request.recipient_org_id,
        service_category=request.service_category.value,
        sender_org=sender,
        now=now,
    )
    if override is not None:
        permitted = [c for c in requested if c in override.categories]
        return _decision(Basis.EMERGENCY, requested, permitted, [], override.id, now)
    consents = await repository.matching_consents(
        session=session,
        subject_ref=request.subject_ref,
        purpose=request.purpose.value,
        sender_org=sender,
        recipient_org=request.recipient_org_id,
        service_category=request.service_category.value,
        country=request.recipient_country,
        now=now,
    )
    permitted = [c for c in requested if any(c in consent.categories for consent in consents)]
    used = [consent.id for consent in consents if set(consent.categories) & set(permitted)]
    basis = Basis.CONSENT if permitted else Basis.NONE
    return _decision(basis, requested, permitted, used, None, now)


def _decision(
    basis: Basis,
    requested: list[str],
    permitted: list[str],
    consent_ids: list[uuid.UUID],
    override_id: uuid.UUID | None,
    now: datetime,
) -> Decision:
    if not permitted:
        basis, consent_ids, override_id = Basis.NONE, [], None
    withheld = {c: WithheldReason.NO_CONSENT for c in requested if c not in permitted}
    return Decision.model_validate(
        {
            "basis": basis,
            "permitted_categories": permitted,
            "withheld": withheld,
            "consent_ids": consent_ids,
            "override_id": override_id,
            "decided_at": now,
        }
    )


async def record_disclosure(
    *,
    session: AsyncSession,
    principal: Principal,
    disclosure_in: DisclosureCreate,
    settings: ConsentSettings,
) -> tuple[Disclosure, bool]:
    """Record a disclosure once per referral; return (record, created now)."""
    referral_id = disclosure_in.referral_id
    existing = await repository.disclosure_by_referral(session=session, referral_id=referral_id)
    if existing is None:
        ledger = await Ledger.lock(session)
        # Checked again under the lock: a concurrent retry may have recorded it meanwhile.
        existing = await repository.disclosure_by_referral(session=session, referral_id=referral_id)
        if existing is None:
            # Under the lock, so a withdrawal that landed after the decision wins.
            await _check_disclosure_basis(session=session, disclosure_in=disclosure_in)
            disclosure = await _store_disclosure(
                session=session,
                ledger=ledger,
                principal=principal,
                disclosure_in=disclosure_in,
                settings=settings,
            )
            return disclosure, True
    _same_disclosure(existing, disclosure_in)
    return existing, False


async def _store_disclosure(
    *,
    session: AsyncSession,
    ledger: Ledger,
    principal: Principal,
    disclosure_in: DisclosureCreate,
    settings: ConsentSettings,
) -> Disclosure:
    now = utcnow()
    disclosure = Disclosure(
        id=new_id(),
        referral_id=disclosure_in.referral_id,
        subject_ref=disclosure_in.subject_ref,
        sender_org_id=disclosure_in.sender_org_id,
        recipient_org_id=disclosure_in.recipient_org_id,
        categories=[c.value for c in disclosure_in.categories],
        basis=disclosure_in.basis,
        consent_ids=[str(i) for i in disclosure_in.consent_ids],
        override_id=disclosure_in.override_id,
        recorded_by_client=principal.client_id,
        recorded_at=now,
    )
    disclosure.ledger_index = await ledger.append(
        event_type="disclosure.made",
        data=_disclosure_event(disclosure),
        at=now,
        retain_days=settings.ledger_retention_days,
    )
    session.add(disclosure)
    await session.flush()
    return disclosure


def _disclosure_event(disclosure: Disclosure) -> dict[str, Any]:
    return {
        "disclosure_id": disclosure.id,
        "referral_id": disclosure.referral_id,
        "subject_ref": disclosure.subject_ref,
        "sender_org_id": disclosure.sender_org_id,
        "recipient_org_id": disclosure.recipient_org_id,
        "categories": disclosure.categories,
        "basis": disclosure.basis,
        "consent_ids": disclosure.consent_ids,
        "override_id": disclosure.override_id,
    }


def _same_disclosure(existing: Disclosure, disclosure_in: DisclosureCreate) -> None:
    same = (
        existing.subject_ref == disclosure_in.subject_ref
        and existing.recipient_org_id == disclosure_in.recipient_org_id
        and existing.categories == [c.value for c in disclosure_in.categories]
        and existing.basis == disclosure_in.basis
    )
    if not same:
        raise Conflict(
            N_(
                "A different disclosure was already recorded for this referral_id. "
                "Retries must repeat the first request exactly."
            )
        )


@dataclass(frozen=True)
class LoadedBasis:
    """The consents and override a disclosure names, as stored now."""

    consents: Sequence[Consent]
    override: EmergencyOverride | None
    complete: bool  # every named id exists


async def _load_basis(
    *, session: AsyncSession, consent_ids: Sequence[uuid.UUID], override_id: uuid.UUID | None
) -> LoadedBasis:
    ids = list(dict.fromkeys(consent_ids))
    consents = await repository.consents_by_ids(session=session, consent_ids=ids)
    override = None
    if override_id is not None:
        override = await repository.get_override(session=session, override_id=override_id)
    complete = len(consents) == len(ids) and (override_id is None) == (override is None)
    return LoadedBasis(consents=consents, override=override, complete=complete)


_CONSENT_ENDED: dict[ConsentStatus, BasisEndReason] = {
    ConsentStatus.WITHDRAWN: "consent-withdrawn",
    ConsentStatus.EXPIRED: "consent-expired",
    ConsentStatus.NOT_YET_VALID: "unknown-basis",
}
_OVERRIDE_ENDED: dict[OverrideStatus, BasisEndReason] = {
    OverrideStatus.ENDED: "override-ended",
    OverrideStatus.EXPIRED: "override-expired",
    OverrideStatus.PENDING: "unknown-basis",
}


def basis_status(basis: LoadedBasis, now: datetime) -> BasisStatus:
    """The one rule: a basis is in force while every consent counts and the override is active."""
    if not basis.complete or (not basis.consents and basis.override is None):
        return BasisStatus(in_force=False, reason="unknown-basis", until=None)
    ended = [_CONSENT_ENDED.get(consent_status(c, now)) for c in basis.consents]
    if basis.override is not None:
        ended.append(_OVERRIDE_ENDED.get(override_status(basis.override, now)))
    reason = next((r for r in ended if r is not None), None)
    if reason is not None:
        return BasisStatus(in_force=False, reason=reason, until=None)
    ends = [c.valid_until for c in basis.consents]
    if basis.override is not None and basis.override.expires_at is not None:
        ends.append(basis.override.expires_at)
    return BasisStatus(in_force=True, reason=None, until=min(ends))


async def check_basis(*, session: AsyncSession, check: BasisCheck) -> BasisStatus:
    """Say whether the consents or override a disclosure rests on are still in force."""
    if check.referral_id is not None:
        recorded = await repository.disclosure_by_referral(
            session=session, referral_id=check.referral_id
        )
        if recorded is None or not _names_recorded_basis(recorded, check):
            return BasisStatus(in_force=False, reason="unknown-basis", until=None)
    basis = await _load_basis(
        session=session, consent_ids=check.consent_ids, override_id=check.override_id
    )
    return basis_status(basis, utcnow())


def _names_recorded_basis(recorded: Disclosure, check: BasisCheck) -> bool:
    named = {str(i) for i in check.consent_ids} <= set(recorded.consent_ids)
    return named and (check.override_id is None or check.override_id == recorded.override_id)


async def _check_disclosure_basis(
    *, session: AsyncSession, disclosure_in: DisclosureCreate
) -> None:
    basis = await _load_basis(
        session=session,
        consent_ids=disclosure_in.consent_ids,
        override_id=disclosure_in.override_id,
    )
    if not _basis_fits(basis, disclosure_in):
        raise UnknownBasis
    status = basis_status(basis, utcnow())
    if status.reason == "unknown-basis":
        raise UnknownBasis
    if not status.in_force:
        raise BasisNoLongerValid(reason=status.reason)
    covered = {c for consent in basis.consents for c in consent.categories}
    if basis.override is not None:
        covered |= set(basis.override.categories)
    outside = [c.value for c in disclosure_in.categories if c.value not in covered]
    if outside:
        raise DisclosureOutsideBasis(
            Message(
                "The named consents or override do not cover: {categories}. Disclose only "
                "the categories the decision permitted, or record a consent that covers "
                "them.",
                categories=", ".join(outside),
            ),
            categories=outside,
        )


def _basis_fits(basis: LoadedBasis, disclosure_in: DisclosureCreate) -> bool:
    """Every consent and the override belong to this subject, sender and recipient."""
    if not basis.complete:
        return False
    override = basis.override
    if override is not None and (
        override.subject_ref != disclosure_in.subject_ref
        or override.recipient_org_id != disclosure_in.recipient_org_id
        or override.requesting_org != disclosure_in.sender_org_id
    ):
        return False
    return all(_consent_fits(c, disclosure_in) for c in basis.consents)


def _consent_fits(consent: Consent, disclosure_in: DisclosureCreate) -> bool:
    if consent.subject_ref != disclosure_in.subject_ref:
        return False
    if consent.recorded_by_org != disclosure_in.sender_org_id:
        return False
    if disclosure_in.purpose is not None and consent.purpose != disclosure_in.purpose.value:
        return False
    if consent.grantee_org_id is not None:
        return consent.grantee_org_id == disclosure_in.recipient_org_id
    category = disclosure_in.service_category
    return (
        category is not None
        and consent.grantee_service_category == category.value
        and consent.grantee_country == disclosure_in.recipient_country
    )


async def list_subject_disclosures(
    *,
    session: AsyncSession,
    principal: Principal,
    subject_ref: str,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Disclosure]:
    """Return what went to whom for a subject: the caller's own sending, or all for auditors."""
    sender = None if _can_read_all(principal) else principal.org_id
    return await repository.list_disclosures(
        session=session, subject_ref=subject_ref, sender_org=sender, after=after, limit=limit
    )


def statement_digest(statement: str) -> tuple[str, int]:
    """Return the SHA-256 hex and length of a statement; the text itself is never stored."""
    return hashlib.sha256(statement.encode()).hexdigest(), len(statement)


PENDING_TTL = timedelta(hours=24)
CONTINUOUS_LIMIT = timedelta(hours=72)
# An override attested within this long after the previous one ended continues it (a renewal).
RENEWAL_GAP = timedelta(hours=24)


def override_status(override: EmergencyOverride, now: datetime) -> OverrideStatus:
    """Return the status at `now`: active past its end, or pending past 24 h, is expired."""
    if override.status == "active" and override.expires_at and override.expires_at <= now:
        return OverrideStatus.EXPIRED
    if override.status == "pending" and override.requested_at + PENDING_TTL <= now:
        return OverrideStatus.EXPIRED
    return OverrideStatus(override.status)


async def request_override(
    *,
    session: AsyncSession,
    principal: Principal,
    override_in: OverrideCreate,
    directory: DirectoryClient,
    settings: ConsentSettings,
) -> EmergencyOverride:
    """Ask for an emergency override; allowed only where the agreement allows one."""
    resolution = await directory.resolve_agreement(
        sender_org=principal.org_id, service_id=override_in.service_id
    )
    if resolution is None or not resolution.agreement.emergency_override_allowed:
        raise OverrideNotAllowed
    if str(resolution.service.organisation_id) != override_in.recipient_org_id:
        raise OverrideOutsideAgreement(
            N_(
                "This service belongs to another organisation than recipient_org_id. "
                "Check the service and recipient in the directory."
            )
        )
    agreement = resolution.agreement
    allowed = [c for c in agreement.emergency_categories if c in agreement.permitted_categories]
    outside = [c.value for c in override_in.categories if c.value not in allowed]
    if outside:
        raise OverrideOutsideAgreement(
            Message(
                "An emergency override may carry only the agreement's emergency "
                "categories ({allowed}); remove {outside}. Seek the returnee's consent for "
                "anything more.",
                allowed=", ".join(allowed) or Message("none"),
                outside=", ".join(outside),
            ),
            categories=outside,
        )
    return await _store_override(
        session=session,
        principal=principal,
        override_in=override_in,
        service_category=resolution.service.category,
        settings=settings,
    )


async def _store_override(
    *,
    session: AsyncSession,
    principal: Principal,
    override_in: OverrideCreate,
    service_category: str,
    settings: ConsentSettings,
) -> EmergencyOverride:
    ledger = await Ledger.lock(session)
    now = utcnow()
    digest, length = statement_digest(override_in.statement)
    override = EmergencyOverride(
        id=new_id(),
        subject_ref=override_in.subject_ref,
        requesting_org=principal.org_id,
        requested_by_client=principal.client_id,
        recipient_org_id=override_in.recipient_org_id,
        service_id=override_in.service_id,
        service_category=service_category,
        categories=[c.value for c in override_in.categories],
        request_statement_sha256=digest,
        request_statement_length=length,
        status=OverrideStatus.PENDING.value,
        requested_at=now,
    )
    await ledger.append(
        event_type="override.requested",
        data={
            "override_id": override.id,
            "subject_ref": override.subject_ref,
            "requesting_org": override.requesting_org,
            "requested_by_client": override.requested_by_client,
            "recipient_org_id": override.recipient_org_id,
            "service_id": override.service_id,
            "service_category": service_category,
            "categories": override.categories,
            "statement_sha256": digest,
            "statement_length": length,
        },
        at=now,
        retain_days=settings.ledger_retention_days,
    )
    session.add(override)
    await session.flush()
    return override


def _may_see_override(principal: Principal, override: EmergencyOverride) -> bool:
    if principal.has_any_role(Role.AUDITOR, Role.MENTAL_HEALTH_PROFESSIONAL):
        return True
    return principal.has_any_role(Role.HOST_OFFICE) and override.requesting_org == principal.org_id


async def get_override(
    *, session: AsyncSession, principal: Principal, override_id: uuid.UUID
) -> EmergencyOverride:
    """Return an override the caller may see."""
    override = await repository.get_override(session=session, override_id=override_id)
    if override is None or not _may_see_override(principal, override):
        raise OverrideNotFound
    return override


async def attest_override(
    *,
    session: AsyncSession,
    principal: Principal,
    override_id: uuid.UUID,
    attest_in: OverrideAttest,
    settings: ConsentSettings,
) -> EmergencyOverride:
    """Attest a pending override: it becomes active for at most 72 hours."""
    ledger = await Ledger.lock(session)
    override = await get_override(session=session, principal=principal, override_id=override_id)
    now = utcnow()
    _check_attestable(override, principal, attest_in, now)
    await _check_renewal(
        session=session,
        override=override,
        principal=principal,
        until=now + timedelta(hours=attest_in.duration_hours),
        now=now,
    )
    digest, length = statement_digest(attest_in.statement)
    override.status = OverrideStatus.ACTIVE.value
    override.attested_at = now
    override.attested_by_client = principal.client_id
    override.attested_by_org = principal.org_id
    override.registration_number = attest_in.registration_number
    override.attestation_statement_sha256 = digest
    override.attestation_statement_length = length
    override.expires_at = now + timedelta(hours=attest_in.duration_hours)
    await ledger.append(
        event_type="override.started",
        data={
            "override_id": override.id,
            "subject_ref": override.subject_ref,
            "attested_by_org": principal.org_id,
            "attested_by_client": principal.client_id,
            "registration_number": attest_in.registration_number,
            "statement_sha256": digest,
            "statement_length": length,
            "expires_at": override.expires_at,
        },
        at=now,
        retain_days=settings.ledger_retention_days,
    )
    await session.flush()
    return override


def _check_attestable(
    override: EmergencyOverride, principal: Principal, attest_in: OverrideAttest, now: datetime
) -> None:
    status = override_status(override, now)
    if override.status == OverrideStatus.PENDING and status == OverrideStatus.EXPIRED:
        raise OverrideRequestExpired
    if status != OverrideStatus.PENDING:
        raise OverrideStateConflict(
            Message(
                "This override is {value}; only a pending override can be attested. "
                "Request a new one if the risk continues.",
                value=status.value,
            )
        )
    if principal.client_id == override.requested_by_client:
        raise SelfAttestation
    if attest_in.professional_org_id not in (None, principal.org_id):
        raise AttestingOrganisationMismatch


async def _check_renewal(
    *,
    session: AsyncSession,
    override: EmergencyOverride,
    principal: Principal,
    until: datetime,
    now: datetime,
) -> None:
    """Past 72 h of back-to-back overrides, the attester must be one who has not attested yet."""
    earlier = await repository.attested_overrides(
        session=session,
        subject_ref=override.subject_ref,
        recipient_org=override.recipient_org_id,
        service_category=override.service_category,
    )
    run, attesters = continuous_run(earlier, now)
    if covered([*run, (now, until)]) > CONTINUOUS_LIMIT and principal.client_id in attesters:
        raise FreshAttestationNeeded(
            Message(
                "This override would extend emergency sharing for this returnee and "
                "recipient beyond {hours:.0f} hours in total, and you attested an "
                "earlier one. Another mental-health professional must assess the risk "
                "afresh and attest; meanwhile seek the returnee's consent.",
                hours=CONTINUOUS_LIMIT.total_seconds() / 3600,
            )
        )


Interval = tuple[datetime, datetime]


def continuous_run(
    overrides: Sequence[EmergencyOverride], now: datetime
) -> tuple[list[Interval], set[str]]:
    """Return the active spans of the back-to-back overrides up to `now`, and who attested them."""
    run: list[Interval] = []
    attesters: set[str] = set()
    start = now
    for span, attester in sorted(_spans(overrides, now), key=lambda x: x[0][1], reverse=True):
        if span[1] + RENEWAL_GAP < start:
            break
        run.append(span)
        attesters.add(attester)
        start = min(start, span[0])
    return run, attesters


def _spans(overrides: Sequence[EmergencyOverride], now: datetime) -> list[tuple[Interval, str]]:
    spans = []
    for o in overrides:
        if o.attested_at is None:
            continue
        ends = [t for t in (o.ended_at, o.expires_at) if t is not None]
        spans.append(((o.attested_at, min(ends) if ends else now), o.attested_by_client or ""))
    return spans


def covered(spans: Sequence[Interval]) -> timedelta:
    """Return how much time the union of `spans` covers."""
    total, reach = timedelta(0), None
    for start, end in sorted(spans):
        if reach is not None and start < reach:
            start = reach
        if end > start:
            total += end - start
            reach = end if reach is None else max(reach, end)
    return total


async def end_override(
    *,
    session: AsyncSession,
    principal: Principal,
    override_id: uuid.UUID,
    end_in: OverrideEnd,
    settings: ConsentSettings,
) -> EmergencyOverride:
    """End a pending or active override now."""
    ledger = await Ledger.lock(session)
    override = await get_override(session=session, principal=principal, override_id=override_id)
    if principal.has_any_role(Role.AUDITOR) and not principal.has_any_role(
        Role.HOST_OFFICE, Role.MENTAL_HEALTH_PROFESSIONAL
    ):
        raise OverrideNotFound
    now = utcnow()
    status = override_status(override, now)
    if status not in (OverrideStatus.PENDING, OverrideStatus.ACTIVE):
        raise OverrideStateConflict(
            Message("This override is already {value}; nothing changed.", value=status.value)
        )
    override.status = OverrideStatus.ENDED.value
    override.ended_at = now
    override.ended_by_client = principal.client_id
    override.end_reason = end_in.reason.value
    await ledger.append(
        event_type="override.ended",
        data={
            "override_id": override.id,
            "subject_ref": override.subject_ref,
            "ended_by_org": principal.org_id,
            "ended_by_client": principal.client_id,
            "reason": override.end_reason,
        },
        at=now,
        retain_days=settings.ledger_retention_days,
    )
    await session.flush()
    return override


async def list_overrides(
    *,
    session: AsyncSession,
    principal: Principal,
    status: OverrideStatus | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[EmergencyOverride]:
    """List overrides: auditors and clinicians all, host offices their own."""
    everyone = principal.has_any_role(Role.AUDITOR, Role.MENTAL_HEALTH_PROFESSIONAL)
    return await repository.list_overrides(
        session=session,
        requesting_org=None if everyone else principal.org_id,
        status=status.value if status else None,
        after=after,
        limit=limit,
    )


async def record_expiries(
    *, session: AsyncSession, settings: ConsentSettings, limit: int = 200
) -> int:
    """Append an `expired` event for each consent or override whose time ran out."""
    ledger = await Ledger.lock(session)
    now = utcnow()
    consents, overrides = await repository.due_expiries(
        session=session, now=now, limit=limit, pending_ttl=PENDING_TTL
    )
    for consent in consents:
        consent.expiry_recorded = True
        await ledger.append(
            event_type="consent.expired",
            data={"consent_id": consent.id, "subject_ref": consent.subject_ref},
            at=now,
            retain_days=settings.ledger_retention_days,
        )
    for override in overrides:
        override.status = OverrideStatus.EXPIRED.value
        await ledger.append(
            event_type="override.expired",
            data={"override_id": override.id, "subject_ref": override.subject_ref},
            at=now,
            retain_days=settings.ledger_retention_days,
        )
    await session.flush()
    return len(consents) + len(overrides)


# The ledger over the API

MAX_LEDGER_ENTRIES = 1000


async def current_tree_head(*, session: AsyncSession, signer: TreeHeadSigner) -> TreeHead:
    """Return the newest signed tree head, signing the first one if none exists yet."""
    head = await transparency_log.latest_tree_head(session)
    if head is None:
        head = await sign_tree_head(session=session, signer=signer)
    return head


async def sign_tree_head(*, session: AsyncSession, signer: TreeHeadSigner) -> TreeHead:
    """Sign the ledger's current size and root now."""
    head = await transparency_log.sign_tree_head(session, signer=signer, only_if_grown=False)
    assert head is not None  # only_if_grown=False always signs
    return head


async def _size_or_current(session: AsyncSession, size: int | None) -> tuple[int, int]:
    current = await transparency_log.ledger_size(session)
    return (current if size is None else size), current


async def inclusion_proof(
    *, session: AsyncSession, index: int, tree_size: int | None
) -> tuple[int, InclusionProof]:
    """Return the tree size proved against and the audit path from entry `index` to its root."""
    size, current = await _size_or_current(session, tree_size)
    if size > current or index >= size:
        raise LedgerRangeInvalid(
            Message(
                "Entry {index} in a tree of {size} entries does not exist; the ledger "
                "holds {current} entries. Use an index below tree_size and a tree_size "
                "up to {current}.",
                index=index,
                size=size,
                current=current,
            )
        )
    return size, await transparency_log.inclusion_proof(session, index=index, tree_size=size)


async def consistency_proof(
    *, session: AsyncSession, first: int, second: int | None
) -> tuple[int, list[bytes], bytes, bytes]:
    """Return the newer size, the proof that `first` is its prefix, and both roots."""
    size, current = await _size_or_current(session, second)
    if not first <= size <= current:
        raise LedgerRangeInvalid(
            Message(
                "Need 1 <= first <= second <= {current} (the current size); got "
                "first={first}, second={size}.",
                current=current,
                first=first,
                size=size,
            )
        )
    proof, first_root, second_root = await transparency_log.consistency_proof(
        session, first=first, second=size
    )
    return size, list(proof), first_root, second_root


async def ledger_entries(
    *, session: AsyncSession, start: int, end: int | None
) -> Sequence[tuple[LedgerEntry, bytes]]:
    """Return entries [start, end) (default 100) with their leaf hashes, at most 1000."""
    stop = start + 100 if end is None else end
    if stop <= start or stop - start > MAX_LEDGER_ENTRIES:
        raise LedgerRangeInvalid(
            Message(
                "Ask for 1 to {max_ledger_entries} entries: end must be above start and "
                "at most start+{max_ledger_entries}.",
                max_ledger_entries=MAX_LEDGER_ENTRIES,
            )
        )
    return await repository.ledger_entries(session=session, start=start, stop=stop)


# Withdrawal notices that could not be delivered


async def dead_letters(*, session: AsyncSession) -> Sequence[OutboxEvent]:
    """Return the dead-lettered withdrawal notices, oldest first."""
    rows = await outbox.dead_letters(session, model=OutboxEvent)
    return [row for row in rows if row.dead_at is not None]


async def replay_dead_letter(*, session: AsyncSession, event_id: uuid.UUID) -> None:
    """Put a dead-lettered withdrawal notice back in the delivery queue."""
    await outbox.replay(session, model=OutboxEvent, event_id=event_id)
