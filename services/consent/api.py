"""HTTP routes of the consent service: consents, decisions, disclosures, emergency overrides."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from services.consent import service
from services.consent.dependencies import (
    Clinician,
    ConsentReader,
    ConsentRecorder,
    DecisionCaller,
    DirectoryDep,
    HostOffice,
    InternalCaller,
    LedgerWriterDep,
    OverrideEnder,
    OverrideReader,
    ReceiptReader,
    SettingsDep,
)
from services.consent.schemas import (
    ConsentCreate,
    ConsentRead,
    ConsentReceiptRead,
    Decision,
    DecisionRequest,
    DisclosureCreate,
    DisclosureRead,
    DisclosureRecorded,
    OverrideAttest,
    OverrideCreate,
    OverrideEnd,
    OverrideRead,
    OverrideStatus,
    SubjectRef,
    WithdrawalCreate,
)
from services.consent.shaping import (
    consent_read,
    disclosure_read,
    disclosure_recorded,
    override_read,
)
from shared.contracts.consent import BasisCheck, BasisStatus
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import (
    Page,
    PageParams,
    decode_time_id_cursor,
    page_params,
    time_id_cursor,
)

router = APIRouter()
PageDep = Annotated[PageParams, Depends(page_params)]


@router.post(
    "/consents",
    name="consents.create",
    status_code=201,
    tags=["consents"],
    summary="Record a consent",
    responses=problem_responses(422),
)
async def create_consent(
    consent_in: ConsentCreate,
    writer: LedgerWriterDep,
    principal: ConsentRecorder,
    settings: SettingsDep,
) -> ConsentRead:
    """Record the returnee's consent before any transfer; it is appended to the ledger.

    The subject is an opaque pseudonym your office derives; names never enter this service.
    Host offices record consents for their referrals; providers and coordinating bodies in the
    country of origin record theirs for local, national and onward referrals, naming the
    domestic partner (or a service category in their country) as the grantee. A consent counts
    only for referrals sent by the organisation that recorded it.
    """
    consent = await writer.run(
        lambda session: service.create_consent(
            session=session, principal=principal, consent_in=consent_in, settings=settings
        )
    )
    return consent_read(consent)


@router.get(
    "/consents/{consent_id}",
    name="consents.get",
    tags=["consents"],
    summary="Read a consent",
    responses=problem_responses(404),
)
async def get_consent(
    consent_id: uuid.UUID, session: SessionDep, principal: ConsentReader
) -> ConsentRead:
    """Return a consent your organisation recorded (auditors: any consent)."""
    return consent_read(
        await service.get_consent(session=session, principal=principal, consent_id=consent_id)
    )


@router.get(
    "/consents/{consent_id}/receipt",
    name="consents.getReceipt",
    tags=["consents"],
    summary="Read a consent receipt",
    responses=problem_responses(404),
)
async def get_consent_receipt(
    consent_id: uuid.UUID, session: SessionDep, principal: ReceiptReader
) -> ConsentReceiptRead:
    """Return the receipt to give the returnee: what was consented to, to whom, until when and
    how to withdraw, in the language the consent was recorded in (French or English; others
    fall back to English). It holds no personal data and names the ledger entry, so the consent
    can be verified later. Readable by the recording office, auditors and admins.
    """
    return await service.get_receipt(session=session, principal=principal, consent_id=consent_id)


@router.post(
    "/consents/{consent_id}/withdraw",
    name="consents.withdraw",
    tags=["consents"],
    summary="Withdraw a consent",
    responses=problem_responses(404, 409, 422),
)
async def withdraw_consent(
    consent_id: uuid.UUID,
    withdrawal_in: WithdrawalCreate,
    writer: LedgerWriterDep,
    principal: ConsentRecorder,
    settings: SettingsDep,
) -> ConsentRead:
    """Withdraw a consent at once: no decision counts it from now on.

    The referral service is told (reliably, with retries) so it stops further disclosures and
    cancels active referrals that rested on this consent. Withdrawing twice answers 409.
    """
    consent = await writer.run(
        lambda session: service.withdraw_consent(
            session=session,
            principal=principal,
            consent_id=consent_id,
            withdrawal_in=withdrawal_in,
            settings=settings,
        )
    )
    return consent_read(consent)


@router.post(
    "/decisions",
    name="decisions.create",
    tags=["decisions"],
    summary="Decide what may be disclosed",
    responses=problem_responses(422),
)
async def decide(
    request_in: DecisionRequest, session: SessionDep, principal: DecisionCaller
) -> Decision:
    """Say which requested categories may go to this recipient, and on which basis.

    Refusal is the default. A consent counts when it is in force now, not withdrawn, for this
    purpose, recorded by the sender, and names the recipient (or its service category in its
    country, given as `recipient_country`). An attested, unexpired emergency override for this
    subject and recipient permits only its minimal categories, with basis `emergency`.
    """
    return await service.decide(session=session, principal=principal, request=request_in)


@router.post(
    "/disclosures",
    name="disclosures.record",
    status_code=201,
    tags=["disclosures"],
    summary="Record a disclosure",
    responses=problem_responses(409, 422),
)
async def record_disclosure(
    disclosure_in: DisclosureCreate,
    writer: LedgerWriterDep,
    principal: InternalCaller,
    settings: SettingsDep,
    response: Response,
) -> DisclosureRecorded:
    """Record that a referral disclosed categories to a recipient; appended to the ledger.

    Idempotent per `referral_id`: a retry returns the first record (header
    `Idempotent-Replayed: true`) and adds no second ledger event.

    Checked under the ledger lock before recording: every consent must belong to this subject,
    sender and recipient (422 `unknown-disclosure-basis`), still be in force and the override
    still active (409 `basis-no-longer-valid`: withdrawn, expired or ended since the decision;
    send nothing), and cover every category (422 `disclosure-outside-basis`).
    """
    disclosure, created = await writer.run(
        lambda session: service.record_disclosure(
            session=session, principal=principal, disclosure_in=disclosure_in, settings=settings
        )
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return disclosure_recorded(disclosure)


@router.post(
    "/basis-checks",
    name="basisChecks.create",
    tags=["disclosures"],
    summary="Check that a disclosure's basis is still in force",
    responses=problem_responses(422),
)
async def check_basis(
    check_in: Annotated[
        BasisCheck,
        Body(
            openapi_examples={
                "consent": {
                    "summary": "The consents a referral rests on",
                    "value": {
                        "consent_ids": ["0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"],
                        "referral_id": "0192f0c4-8a10-7000-8000-00000000abcd",
                    },
                },
                "emergency": {
                    "summary": "An emergency override",
                    "value": {
                        "consent_ids": [],
                        "override_id": "0192f0c4-9b20-7000-8000-00000000ef01",
                    },
                },
            }
        ),
    ],
    session: SessionDep,
    principal: InternalCaller,
) -> BasisStatus:
    """Say whether every named consent is still in force and the override still active.

    For services only (the referral service, before releasing a payload). `in_force` false
    comes with a `reason`: `consent-withdrawn`, `consent-expired`, `override-ended`,
    `override-expired`, or `unknown-basis` (an id that does not exist, a pending override, or
    a basis other than the one recorded for `referral_id`). `until` is when the basis ends at
    the latest. The same rule refuses `POST /disclosures`.
    """
    return await service.check_basis(session=session, check=check_in)


@router.get(
    "/subjects/{subject_ref}/disclosures",
    name="subjects.listDisclosures",
    tags=["disclosures"],
    summary="List a subject's disclosures",
    responses=problem_responses(400, 422),
)
async def list_subject_disclosures(
    subject_ref: Annotated[SubjectRef, Path()],
    session: SessionDep,
    principal: ConsentReader,
    page: PageDep,
) -> Page[DisclosureRead]:
    """What went to whom, when, on which basis: your organisation's disclosures (auditors: all)."""
    items = await service.list_subject_disclosures(
        session=session,
        principal=principal,
        subject_ref=subject_ref,
        after=decode_time_id_cursor(page.cursor),
        limit=page.limit,
    )
    last = items[-1] if len(items) == page.limit else None
    return Page[DisclosureRead](
        items=[disclosure_read(d) for d in items],
        next_cursor=time_id_cursor(last.recorded_at, last.id) if last else None,
    )


@router.post(
    "/overrides",
    name="overrides.request",
    status_code=201,
    tags=["overrides"],
    summary="Request an emergency override",
    responses=problem_responses(422, 503, 504),
)
async def request_override(
    override_in: OverrideCreate,
    session: SessionDep,
    principal: HostOffice,
    directory: DirectoryDep,
    settings: SettingsDep,
) -> OverrideRead:
    """Ask to share minimal categories without consent because a life is at risk.

    Allowed only when the agreement with this service allows emergency overrides, and only for
    the agreement's emergency categories (by default identity.basic, contact, health.mental);
    the override stays pending until a mental-health professional attests it, for 24 hours.
    The statement may hold health information: only its SHA-256 and length are stored, never
    the text.
    """
    override = await service.request_override(
        session=session,
        principal=principal,
        override_in=override_in,
        directory=directory,
        settings=settings,
    )
    return override_read(override)


@router.get(
    "/overrides",
    name="overrides.list",
    tags=["overrides"],
    summary="List emergency overrides",
    responses=problem_responses(400, 422),
)
async def list_overrides(
    session: SessionDep,
    principal: OverrideReader,
    page: PageDep,
    status: Annotated[OverrideStatus | None, Query(description="Only this status.")] = None,
) -> Page[OverrideRead]:
    """List overrides, newest first: auditors and clinicians see all, host offices their own."""
    items = await service.list_overrides(
        session=session,
        principal=principal,
        status=status,
        after=decode_time_id_cursor(page.cursor),
        limit=page.limit,
    )
    last = items[-1] if len(items) == page.limit else None
    return Page[OverrideRead](
        items=[override_read(o) for o in items],
        next_cursor=time_id_cursor(last.requested_at, last.id) if last else None,
    )


@router.get(
    "/overrides/{override_id}",
    name="overrides.get",
    tags=["overrides"],
    summary="Read an emergency override",
    responses=problem_responses(404),
)
async def get_override(
    override_id: uuid.UUID, session: SessionDep, principal: OverrideReader
) -> OverrideRead:
    """Return an override your office requested (auditors and clinicians: any)."""
    return override_read(
        await service.get_override(session=session, principal=principal, override_id=override_id)
    )


@router.post(
    "/overrides/{override_id}/attest",
    name="overrides.attest",
    tags=["overrides"],
    summary="Attest an emergency override",
    responses=problem_responses(404, 409, 422),
)
async def attest_override(
    override_id: uuid.UUID,
    attest_in: OverrideAttest,
    writer: LedgerWriterDep,
    principal: Clinician,
    settings: SettingsDep,
) -> OverrideRead:
    """As a mental-health professional, attest that a life is at risk: active for at most 72 h.

    The statement may hold health information: only its SHA-256 and length are stored.
    Safeguards: the client that requested the override cannot attest it (403
    `override-self-attestation`); a request not attested within 24 hours has expired (422
    `override-request-expired`); when back-to-back overrides for this returnee and recipient
    would exceed 72 hours in total, a professional who attested none of them must attest (403
    `override-fresh-attestation-needed`); `professional_org_id`, if sent, must be your own
    organisation (422).
    """
    override = await writer.run(
        lambda session: service.attest_override(
            session=session,
            principal=principal,
            override_id=override_id,
            attest_in=attest_in,
            settings=settings,
        )
    )
    return override_read(override)


@router.post(
    "/overrides/{override_id}/end",
    name="overrides.end",
    tags=["overrides"],
    summary="End an emergency override",
    responses=problem_responses(404, 409, 422),
)
async def end_override(
    override_id: uuid.UUID,
    end_in: OverrideEnd,
    writer: LedgerWriterDep,
    principal: OverrideEnder,
    settings: SettingsDep,
) -> OverrideRead:
    """End a pending or active override now, e.g. once consent was obtained."""
    override = await writer.run(
        lambda session: service.end_override(
            session=session,
            principal=principal,
            override_id=override_id,
            end_in=end_in,
            settings=settings,
        )
    )
    return override_read(override)
