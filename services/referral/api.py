"""HTTP routes of the referral service: parse, authorise, call the service, shape the response."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from services.referral import (
    creation,
    fhir,
    following,
    notes,
    onward,
    open_referrals,
    plans,
    preview,
    queries,
    report_formats,
    reports,
    service,
    shaping,
    status_changes,
)
from services.referral.dependencies import (
    AdminContext,
    ClientsDep,
    CoordinatorContext,
    HostOfficeContext,
    InternalCallerContext,
    PartyContext,
    PlanReaderContext,
    ReaderContext,
    RecipientContext,
    SenderContext,
    SettingsDep,
    StatsContext,
)
from services.referral.schemas import (
    FollowedReferral,
    Include,
    KeySetRead,
    NoteCreate,
    NoteRead,
    OpenReferralAssign,
    OpenReferralCreate,
    OpenReferralRead,
    OpenReferralSubmit,
    Period,
    PlanCreate,
    PlanItemCreate,
    PlanItemUpdate,
    PlanRead,
    PlanUpdate,
    ReferralCreate,
    ReferralPreview,
    ReferralRead,
    ReferralReport,
    ReferralRequest,
    ReferralStats,
    ReportDimension,
    ScorecardPage,
    SealedReferralCreate,
    Status,
    StatusChange,
    UtcDatetime,
    WebhookDeadLetter,
)
from shared.auth import AnyPrincipal
from shared.casefile import casefile_json_schema
from shared.contracts.consent import WithdrawalNotice, WithdrawalResult
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.i18n import current_language
from shared.outbox import Replayed
from shared.pagination import Page, PageParams, page_params
from shared.vocabulary import ServiceCategory

router = APIRouter(tags=["referrals"])
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]{8,128}$",
        description="Any unique string (8-128 chars); a retry with the same key and body returns "
        "the first answer instead of creating a second referral.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match", description="The ETag you last read; 412 if the referral changed since."
    ),
]
Paging = Annotated[PageParams, Depends(page_params)]
ProgrammeQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$",
        description="Only this programme (its code).",
        examples=["eu-reintegration-2026"],
    ),
]
HostCountryQuery = Annotated[
    str | None,
    Query(
        pattern="^[A-Z]{2}$",
        description="Only referrals sent from this host country (ISO 3166-1 alpha-2).",
        examples=["DE"],
    ),
]
Included = Annotated[
    list[Include] | None,
    Query(
        alias="include",
        description="`payload` adds each item's JWE (a referral's payload and feedback, a note's "
        "body) under the single read's rules; left out by default so that pages stay small on "
        "slow links. A referral's payload also comes with its single read.",
        examples=[["payload"]],
    ),
]


def _with_payload(included: list[Include] | None) -> bool:
    return Include.PAYLOAD in (included or ())


@router.get(
    "/casefile/schema",
    name="casefile.getSchema",
    summary="JSON Schema of the CaseFile",
    responses=problem_responses(),
)
async def casefile_schema(principal: AnyPrincipal) -> dict[str, Any]:
    """Return the CaseFile JSON Schema; each section names its data category (x-data-category)."""
    return casefile_json_schema()


@router.post(
    "/referrals",
    name="referrals.create",
    status_code=201,
    summary="Send a referral",
    responses=problem_responses(404, 409, 422, 503, 504),
)
async def create_referral(
    referral_in: ReferralCreate,
    session: SessionDep,
    context: SenderContext,
    clients: ClientsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReferralRead:
    """Send a returnee's case file to a provider's service, sharing only what the SOP and the
    consent allow.

    Host offices send under their international agreements; providers, coordinating bodies and
    local authorities in the country of origin send to other providers there under a national
    or local agreement naming them as the sender (else 422 `no-agreement`), with a consent they
    recorded. A national or local agreement carries no referral across a border, and a local
    one none outside the sender's areas (422 `pathway-not-covered`).

    The answer lists the shared categories and each withheld one with its reason (`not_in_sop`,
    `no_consent`, `not_requested`) and an `explanation` of it, and warns when the provider needs a
    withheld category at first contact; explanations and warnings are in the language
    `Accept-Language` asks for (English or French), the reason codes never change. The payload
    is stored only as JWE readable by the provider and your organisation.
    A consent withdrawn or expired while the referral was being sent answers 409
    `consent-ended-while-sending`: nothing was sent or stored. An agreement that requires
    sealed referrals refuses this (422 `sealed-mode-required`): use `POST /referrals/preview`
    and `POST /referrals/sealed`, where refex never reads the case file.
    """
    referral, _ = await creation.create(
        session=session,
        context=context,
        referral_in=referral_in,
        clients=clients,
        idempotency_key=idempotency_key,
    )
    return _created(response, referral)


@router.post(
    "/referrals/preview",
    name="referrals.preview",
    summary="Preview a sealed referral",
    responses=problem_responses(404, 422, 503, 504),
)
async def preview_referral(
    request_in: ReferralRequest,
    context: SenderContext,
    clients: ClientsDep,
    settings: SettingsDep,
) -> ReferralPreview:
    """Ask what may be sent before sealing: the permitted categories (requested ∩ agreement ∩
    consent), the withheld ones with reasons, the agreement version, every key to encrypt to
    with the key set's fingerprint, and a referral id reserved for `sealed_reservation_ttl_s`
    seconds (10 minutes by default).

    Seal each permitted section as its own JWE to all `keys`, with `aad[category]` as AAD, and
    send them to `POST /referrals/sealed` with `reservation`. Nothing is stored and nothing is
    disclosed by a preview.
    """
    return await preview.preview(
        context=context,
        request_in=request_in,
        clients=clients,
        ttl_s=settings.sealed_reservation_ttl_s,
    )


@router.post(
    "/referrals/sealed",
    name="referrals.createSealed",
    status_code=201,
    summary="Send a sealed referral",
    responses=problem_responses(404, 409, 422, 503, 504),
)
async def create_sealed_referral(
    sealed_in: SealedReferralCreate,
    session: SessionDep,
    context: SenderContext,
    clients: ClientsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReferralRead:
    """Send sections your own system encrypted; refex checks each envelope and never decrypts.

    The decision is taken again: a section labelled with a category that may not be shared now
    is refused (422 `section-not-permitted`) and nothing is stored. Refused as well: a
    reservation not issued for this sender, service, returnee and purpose (422
    `reservation-invalid`), an expired or already used one (409 `reservation-expired`,
    `reservation-used`), keys changed since the preview (409 `key-set-changed`: fetch the
    preview again), and a section not encrypted to exactly the preview's keys, not bound to
    `refex:referral:<id>:section:<category>` or carrying other clear-text members (422
    `sealed-section-invalid`). Withheld categories, warnings, consent ending while sending
    (409 `consent-ended-while-sending`), duplicates and idempotency work as for
    `POST /referrals`. The referral's `payload_mode` is `sealed`.
    """
    referral, _ = await creation.create_sealed(
        session=session,
        context=context,
        sealed_in=sealed_in,
        clients=clients,
        idempotency_key=idempotency_key,
    )
    return _created(response, referral)


@router.get(
    "/referrals/{referral_id}/keys",
    name="referrals.keys",
    summary="Keys to seal a note to",
    responses=problem_responses(404, 503, 504),
)
async def referral_keys(
    referral_id: uuid.UUID, session: SessionDep, context: PartyContext, clients: ClientsDep
) -> KeySetRead:
    """Both parties' encryption keys valid now and their fingerprint: seal a note to all of
    them (AAD `refex:note:<referral_id>`) and send it with that `key_set_fingerprint`."""
    return await notes.party_keys(
        session=session, context=context, referral_id=referral_id, clients=clients
    )


@router.get(
    "/referrals",
    name="referrals.list",
    summary="List referrals you sent or received",
    responses=problem_responses(422),
)
async def list_referrals(
    session: SessionDep,
    context: ReaderContext,
    paging: Paging,
    box: Annotated[
        str | None,
        Query(pattern="^(sent|received)$", description="Only `sent` or only `received`."),
    ] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    category: Annotated[list[ServiceCategory] | None, Query()] = None,
    updated_since: Annotated[
        UtcDatetime | None,
        Query(
            description="Only referrals changed at or after this time (ISO 8601 with its zone; "
            "a time without a zone is refused with 422).",
            examples=["2026-11-25T08:00:00Z"],
        ),
    ] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue referrals.")] = None,
    programme: ProgrammeQuery = None,
    host_country: HostCountryQuery = None,
    include: Included = None,
) -> Page[ReferralRead]:
    """List the referrals your organisation is a party to, oldest change first (for polling).

    A provider's or lead organisation's inbox (`box=received`) spans every programme and host
    country unless `programme` or `host_country` narrows it. Items carry metadata only; add
    `include=payload` for the JWEs (audited like single reads), or read one referral. Auditors
    see every referral's metadata, never payloads.
    """
    return await queries.list_referrals(
        session=session,
        principal=context.principal,
        paging=paging,
        box=box,
        statuses=status,
        categories=category,
        updated_since=updated_since,
        overdue=overdue,
        programme=programme,
        host_country=host_country,
        include_payload=_with_payload(include),
        request_id=context.request_id,
    )


@router.get(
    "/referrals/overdue",
    name="referrals.listOverdue",
    summary="Referrals past their response deadline",
    responses=problem_responses(422),
)
async def list_overdue(
    session: SessionDep, context: ReaderContext, paging: Paging, include: Included = None
) -> Page[ReferralRead]:
    """List your active referrals whose acknowledge or respond deadline has passed.

    Metadata only unless `include=payload`, as for the referral list.
    """
    return await queries.list_referrals(
        session=session,
        principal=context.principal,
        paging=paging,
        box=None,
        statuses=None,
        categories=None,
        updated_since=None,
        overdue=True,
        include_payload=_with_payload(include),
        request_id=context.request_id,
    )


@router.get(
    "/referrals/stats",
    name="referrals.getStats",
    summary="Statistics without personal data",
    responses=problem_responses(),
)
async def referral_stats(
    session: SessionDep,
    context: StatsContext,
    programme: Annotated[str | None, Query(max_length=128)] = None,
    recipient_org_id: Annotated[
        uuid.UUID | None,
        Query(description="Only referrals this organisation received (its SLA performance)."),
    ] = None,
) -> ReferralStats:
    """Counts by status, category and programme, times to acknowledge and accept, outcomes.

    Auditors and admins see all referrals; other roles see those of their organisation.
    `recipient_org_id` narrows them to one recipient, as the directory's partner page links.
    """
    return await queries.stats(
        session=session,
        principal=context.principal,
        programme=programme,
        recipient_org_id=recipient_org_id,
    )


ReportFormat = Annotated[
    str,
    Query(
        alias="format",
        pattern="^(json|csv|html)$",
        description="`json`, `csv` (a download) or `html` (a printable page in the language "
        "of Accept-Language, English or French).",
    ),
]
FromDate = Annotated[
    date | None,
    Query(alias="from", description="First day counted (default: 1 January this year)."),
]
ToDate = Annotated[
    date | None, Query(alias="to", description="Last day counted, included (default: today).")
]
GroupBy = Annotated[
    list[str] | None,
    Query(
        description="Dimensions to group by besides the period, comma-separated or repeated: "
        + ", ".join(d.value for d in ReportDimension)
        + ".",
        examples=["programme,host_country"],
    ),
]
REPORT_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": "period,sent\r\n2026-03,12\r\n"},
            "text/html": {"schema": {"type": "string"}},
        }
    }
}


@router.get(
    "/referrals/reports",
    name="referrals.getReport",
    summary="Report by period, programme, country, partner, category and outcome",
    response_model=ReferralReport,
    responses={**REPORT_CONTENT, **problem_responses(400, 422)},
)
async def referral_report(
    session: SessionDep,
    context: StatsContext,
    period: Period = Period.MONTH,
    from_date: FromDate = None,
    to_date: ToDate = None,
    group_by: GroupBy = None,
    programme: ProgrammeQuery = None,
    host_country: HostCountryQuery = None,
    output: ReportFormat = "json",
) -> Response:
    """Referrals sent, acknowledged and accepted on time, median and p90 hours, outcomes,
    feedback scores and withheld categories by reason, per period and group, with the total.

    Admins and auditors count every referral; other organisations the referrals they sent or
    received. No personal data; counts under 5 show as "<5", and figures resting on fewer
    values too (see `threshold`). `format=csv` downloads the same table, `format=html` is a
    page to print.
    """
    scope = reports.report_scope(
        from_date=from_date, to_date=to_date, programme=programme, host_country=host_country
    )
    report = await reports.report(
        session=session,
        principal=context.principal,
        scope=scope,
        period=period,
        group_by=reports.dimensions(group_by),
    )
    return report_formats.response(report, output, current_language())


@router.get(
    "/referrals/reports/scorecards",
    name="referrals.getScorecards",
    summary="Each provider's response times, month by month",
    responses=problem_responses(400, 422),
)
async def partner_scorecards(
    session: SessionDep,
    context: StatsContext,
    from_date: FromDate = None,
    to_date: ToDate = None,
    programme: ProgrammeQuery = None,
    host_country: HostCountryQuery = None,
) -> ScorecardPage:
    """Per provider and month: referrals received, % acknowledged and accepted on time, median
    hours to acknowledge. Counted and suppressed like the report (a % is hidden when either of
    its counts is)."""
    scope = reports.report_scope(
        from_date=from_date, to_date=to_date, programme=programme, host_country=host_country
    )
    return await reports.scorecards(session=session, principal=context.principal, scope=scope)


@router.get(
    "/referrals/webhooks/jwks",
    name="referrals.webhooks.getJwks",
    summary="Keys that sign webhook notifications",
)
async def webhook_jwks(request: Request) -> dict[str, Any]:
    """Public keys to verify the detached JWS in the `X-Refex-Signature` header of webhooks."""
    jwks: dict[str, Any] = request.app.state.webhook_jwks
    return jwks


@router.get(
    "/referrals/deliveries/dead-letters",
    name="referrals.deliveries.listDeadLetters",
    summary="Notifications that could not be delivered",
    responses=problem_responses(),
)
async def list_dead_letters(session: SessionDep, context: AdminContext) -> list[WebhookDeadLetter]:
    """List webhook notifications that exhausted their attempts, oldest first (admin).

    Each names the event, the referral and the partner organisation, the number of attempts and
    the last error (`HTTP 503`, `timeout`, `ConnectError`...). Fix the cause with the partner,
    then replay the notification.
    """
    return await queries.dead_letters(session=session)


@router.post(
    "/referrals/deliveries/{event_id}/replay",
    name="referrals.deliveries.replay",
    summary="Retry a dead-lettered notification",
    status_code=202,
    responses=problem_responses(404),
)
async def replay_dead_letter(
    event_id: uuid.UUID, session: SessionDep, context: AdminContext
) -> Replayed:
    """Put a dead-lettered notification back in the delivery queue with fresh attempts (admin).

    404 when no dead letter has this id (it was replayed or delivered already).
    """
    return await queries.replay_dead_letter(session=session, event_id=event_id)


@router.post(
    "/referrals/open",
    name="openReferrals.create",
    status_code=201,
    summary="Ask a coordinator to choose a provider",
    tags=["open referrals"],
    responses=problem_responses(404, 422, 503),
)
async def create_open_referral(
    open_in: OpenReferralCreate,
    session: SessionDep,
    context: HostOfficeContext,
    clients: ClientsDep,
) -> OpenReferralRead:
    """Send an open referral (a service category in an area, no personal data) to the
    organisation coordinating that area; it assigns a member provider, then you submit the
    case file with `POST /referrals/open/{id}/submit`."""
    row = await open_referrals.create(
        session=session, context=context, open_in=open_in, clients=clients
    )
    return OpenReferralRead.model_validate(row, from_attributes=True)


@router.get(
    "/referrals/open",
    name="openReferrals.list",
    summary="Open referrals you sent or coordinate",
    tags=["open referrals"],
    responses=problem_responses(),
)
async def list_open_referrals(session: SessionDep, context: PartyContext) -> list[OpenReferralRead]:
    """List the open referrals your organisation sent or must assign."""
    rows = await open_referrals.list_visible(session=session, context=context)
    return [OpenReferralRead.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/referrals/open/followed",
    name="openReferrals.listFollowed",
    summary="Referrals you routed: status and deadlines",
    tags=["open referrals"],
    responses=problem_responses(422),
)
async def list_followed(
    session: SessionDep, context: CoordinatorContext, paging: Paging
) -> Page[FollowedReferral]:
    """List the open referrals you assigned, oldest first, with the status, deadlines and
    outcome of the referral the sender submitted (`referral_id` null until then).

    Never the case file: no payload, no JWE, no feedback. When a referral you routed passes
    its acknowledge or respond deadline unanswered, you receive one `referral.stalled`
    notification and `stalled_at` tells when.
    """
    return await following.list_followed(
        session=session, principal=context.principal, paging=paging
    )


PlanIfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The plan's ETag you last read; 412 if the plan changed since.",
        examples=['"2"'],
    ),
]


@router.post(
    "/referrals/plans",
    name="plans.create",
    status_code=201,
    summary="Start a reintegration plan",
    tags=["plans"],
    responses=problem_responses(409, 422),
)
async def create_plan(
    plan_in: PlanCreate, session: SessionDep, context: HostOfficeContext, response: Response
) -> PlanRead:
    """Start the plan of one returnee (your pseudonym; it is stored only as a keyed digest):
    the expected return date and the steps across phases (`pre_departure`, `arrival`,
    `post_return`, `community`), each with a service category, a planned date and, once sent,
    the referral.

    A linked referral must be one you sent for the same returnee and category (422
    `referral-not-linkable`) and in no other plan (409 `referral-already-planned`); its
    status then sets the item's. One plan per returnee: a second answers 409 `plan-exists`
    with `existing_plan_id`.
    """
    plan = await plans.create(session=session, context=context, plan_in=plan_in)
    response.headers["Location"] = f"/referrals/plans/{plan.id}"
    response.headers["ETag"] = f'"{plan.version}"'
    return plan


@router.get(
    "/referrals/plans",
    name="plans.list",
    summary="Plans you own or take part in",
    tags=["plans"],
    responses=problem_responses(422),
)
async def list_plans(
    session: SessionDep, context: PlanReaderContext, paging: Paging
) -> Page[PlanRead]:
    """List plans, oldest change first: all items of the plans your office owns; of other
    plans only the items whose referral your organisation sent or received."""
    return await plans.list_plans(session=session, principal=context.principal, paging=paging)


@router.get(
    "/referrals/plans/{plan_id}",
    name="plans.get",
    summary="Read a reintegration plan",
    tags=["plans"],
    responses=problem_responses(404),
)
async def get_plan(
    plan_id: uuid.UUID, session: SessionDep, context: PlanReaderContext, response: Response
) -> PlanRead:
    """Return the plan with its progress: every item for the office that owns it, only the
    items of its own referrals for a provider. Anyone else gets 404."""
    plan = await plans.read(session=session, context=context, plan_id=plan_id)
    response.headers["ETag"] = f'"{plan.version}"'
    return plan


@router.patch(
    "/referrals/plans/{plan_id}",
    name="plans.update",
    summary="Change a plan's return date or programme",
    tags=["plans"],
    responses=problem_responses(404, 412, 422),
)
async def update_plan(
    plan_id: uuid.UUID,
    plan_in: PlanUpdate,
    session: SessionDep,
    context: HostOfficeContext,
    response: Response,
    if_match: PlanIfMatch = None,
) -> PlanRead:
    """Change the expected return date or the programme of a plan your office owns."""
    plan = await plans.update(
        session=session, context=context, plan_id=plan_id, plan_in=plan_in, if_match=if_match
    )
    response.headers["ETag"] = f'"{plan.version}"'
    return plan


@router.post(
    "/referrals/plans/{plan_id}/items",
    name="plans.items.create",
    status_code=201,
    summary="Add a step to a plan",
    tags=["plans"],
    responses=problem_responses(404, 409, 412, 422),
)
async def add_plan_item(
    plan_id: uuid.UUID,
    item_in: PlanItemCreate,
    session: SessionDep,
    context: HostOfficeContext,
    response: Response,
    if_match: PlanIfMatch = None,
) -> PlanRead:
    """Add a step to a plan your office owns; answers the whole plan. A linked referral must
    be yours, for this returnee and category, and in no other plan."""
    plan = await plans.add_item(
        session=session, context=context, plan_id=plan_id, item_in=item_in, if_match=if_match
    )
    response.headers["ETag"] = f'"{plan.version}"'
    return plan


@router.patch(
    "/referrals/plans/{plan_id}/items/{item_id}",
    name="plans.items.update",
    summary="Change a step, or link its referral",
    tags=["plans"],
    responses=problem_responses(404, 409, 412, 422),
)
async def update_plan_item(
    plan_id: uuid.UUID,
    item_id: uuid.UUID,
    item_in: PlanItemUpdate,
    session: SessionDep,
    context: HostOfficeContext,
    response: Response,
    if_match: PlanIfMatch = None,
) -> PlanRead:
    """Change a step's planned date or status, or link the referral you sent for it
    (`referral_id`; null unlinks). A linked step's status follows its referral: setting it
    by hand answers 409 `plan-item-follows-referral`."""
    plan = await plans.update_item(
        session=session,
        context=context,
        plan_id=plan_id,
        item_id=item_id,
        item_in=item_in,
        if_match=if_match,
    )
    response.headers["ETag"] = f'"{plan.version}"'
    return plan


@router.post(
    "/referrals/open/{open_id}/assign",
    name="openReferrals.assign",
    summary="Assign a member provider",
    tags=["open referrals"],
    responses=problem_responses(404, 409, 422, 503),
)
async def assign_open_referral(
    open_id: uuid.UUID,
    assign_in: OpenReferralAssign,
    session: SessionDep,
    context: CoordinatorContext,
    clients: ClientsDep,
) -> OpenReferralRead:
    """Choose the service of one of your member providers; the sender is notified."""
    row = await open_referrals.assign(
        session=session, context=context, open_id=open_id, assign_in=assign_in, clients=clients
    )
    return OpenReferralRead.model_validate(row, from_attributes=True)


@router.post(
    "/referrals/open/{open_id}/submit",
    name="openReferrals.submit",
    status_code=201,
    tags=["open referrals"],
    summary="Send the case file to the assigned provider",
    responses=problem_responses(404, 409, 422, 503),
)
async def submit_open_referral(
    open_id: uuid.UUID,
    submit_in: OpenReferralSubmit,
    session: SessionDep,
    context: HostOfficeContext,
    clients: ClientsDep,
) -> ReferralRead:
    """Send the returnee's case file to the assigned provider under the usual rules
    (agreement, consent, minimisation, encryption)."""
    return await open_referrals.submit(
        session=session, context=context, open_id=open_id, submit_in=submit_in, clients=clients
    )


@router.get(
    "/referrals/{referral_id}",
    name="referrals.get",
    summary="Read one referral",
    responses=problem_responses(404),
)
async def get_referral(
    referral_id: uuid.UUID, session: SessionDep, context: ReaderContext, response: Response
) -> ReferralRead:
    """Return a referral with its JWE payload to the sender and recipient; metadata to auditors.

    Anyone else gets 404, whether or not the referral exists.
    """
    referral = await service.read(session=session, context=context, referral_id=referral_id)
    response.headers["ETag"] = f'"{_version_of(referral)}"'
    return referral


@router.post(
    "/referrals/{referral_id}/status",
    name="referrals.changeStatus",
    summary="Change a referral's status",
    responses=problem_responses(404, 409, 412, 422, 503, 504),
)
async def change_status(
    referral_id: uuid.UUID,
    change: StatusChange,
    session: SessionDep,
    context: PartyContext,
    clients: ClientsDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralRead:
    """Move the referral along its lifecycle (FHIR Task codes).

    The provider acknowledges (`received`), accepts, rejects, starts (`in-progress`), puts on hold,
    fails or completes (with an `outcome` and optional returnee `feedback`); the sender cancels.
    `rejected`, `cancelled`, `on-hold` and `failed` need a `reason`. An illegal move answers 409
    listing the moves you may make. A feedback `comment` is sent to the other party only while
    the consent (or override) and the agreement hold; otherwise 409 `basis-ended`: complete
    without the comment (the score alone is kept).
    """
    referral = await status_changes.change_status(
        session=session,
        context=context,
        referral_id=referral_id,
        change=change,
        if_match=if_match,
        clients=clients,
    )
    response.headers["ETag"] = service.etag(referral)
    return shaping.to_read(referral, context.principal)


@router.post(
    "/referrals/{referral_id}/onward",
    name="referrals.passOn",
    status_code=201,
    summary="Pass a referral on to another provider",
    responses=problem_responses(403, 404, 409, 422, 503, 504),
)
async def pass_on_referral(
    referral_id: uuid.UUID,
    onward_in: ReferralCreate,
    session: SessionDep,
    context: RecipientContext,
    clients: ClientsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReferralRead:
    """Pass a referral addressed to your organisation on to another provider's service when you
    cannot serve the returnee (an onward referral).

    Send the case file you decrypted from the referral received: refex minimises it again for
    the new provider, shares only what your own agreement with that provider (a national or
    local one) and a consent you recorded naming it allow, and encrypts it to the new provider
    and your organisation. `subject_ref` is your own pseudonym of the returnee, the one your
    consent names. `requested_categories` may name only categories the referral received
    carried (else 422 `beyond-original-referral`). The new referral names the first in
    `based_on`; the first closes as `completed` with outcome `referred-elsewhere`, and its
    sender sees in `passed_on` to which organisation and service it went, never the new case
    file. Only the recipient may pass a referral on (403 `not-the-recipient`), and only while
    it is open (409 `referral-closed`).
    """
    referral, _ = await onward.pass_on(
        session=session,
        context=context,
        referral_id=referral_id,
        onward_in=onward_in,
        clients=clients,
        idempotency_key=idempotency_key,
    )
    return _created(response, referral)


@router.post(
    "/referrals/{referral_id}/onward/sealed",
    name="referrals.passOnSealed",
    status_code=201,
    summary="Pass a referral on, sealed by your own system",
    responses=problem_responses(403, 404, 409, 422, 503, 504),
)
async def pass_on_sealed_referral(
    referral_id: uuid.UUID,
    sealed_in: SealedReferralCreate,
    session: SessionDep,
    context: RecipientContext,
    clients: ClientsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReferralRead:
    """Pass a referral addressed to your organisation on, with the sections sealed by your own
    system: refex never sees the case file.

    Ask `POST /referrals/preview` for the new provider's service first (as for any sealed
    referral), seal each permitted section you decrypted from the referral received, and send
    them here with the preview's `reservation`. The rules of `POST /referrals/{id}/onward`
    apply: only categories the referral received carried, only while it is open, only by its
    recipient; the first referral closes as `referred-elsewhere`.
    """
    referral, _ = await onward.pass_on(
        session=session,
        context=context,
        referral_id=referral_id,
        onward_in=sealed_in,
        clients=clients,
        idempotency_key=idempotency_key,
    )
    return _created(response, referral)


@router.post(
    "/referrals/{referral_id}/notes",
    name="referrals.notes.create",
    status_code=201,
    summary="Add a note",
    responses=problem_responses(404, 409, 413, 422, 503, 504),
)
async def add_note(
    referral_id: uuid.UUID,
    note_in: NoteCreate,
    session: SessionDep,
    context: PartyContext,
    clients: ClientsDep,
    settings: SettingsDep,
) -> NoteRead:
    """Add a follow-up note or document, encrypted to both parties before it is stored.

    Send `text` and refex encrypts it, or `sealed`: a JWE you encrypted to exactly the keys of
    `GET /referrals/{referral_id}/keys` (AAD `refex:note:<referral_id>`) with their
    `key_set_fingerprint` (409 `key-set-changed` when they changed since; 422
    `sealed-section-invalid` when it does not match). On a sealed referral only sealed notes
    are accepted (422 `sealed-note-required`).

    A note goes to the other party only while the basis for sharing holds: 409 `basis-ended`
    (with `reason`: `consent-withdrawn`, `consent-expired`, `override-ended`,
    `override-expired`, `unknown-basis` or `agreement-ended`) once the consent, the emergency
    override or the agreement has ended, and 409 `referral-closed` on a closed referral. A
    referral holds at most `notes_max_per_referral` notes (409 `note-limit-reached`) of at most
    `note_max_chars` characters each (413 `note-too-long`); both are settings of the service.
    """
    limits = notes.NoteLimits(
        max_per_referral=settings.notes_max_per_referral, max_chars=settings.note_max_chars
    )
    note = await notes.add_note(
        session=session,
        context=context,
        referral_id=referral_id,
        note_in=note_in,
        clients=clients,
        limits=limits,
    )
    return NoteRead.model_validate(note, from_attributes=True)


@router.get(
    "/referrals/{referral_id}/notes",
    name="referrals.notes.list",
    summary="List a referral's notes",
    responses=problem_responses(404, 409),
)
async def list_notes(
    referral_id: uuid.UUID, session: SessionDep, context: PartyContext, include: Included = None
) -> list[NoteRead]:
    """Return the notes in the order they were written; with `include=payload` each carries
    its body as JWE for both parties.

    After the returnee withdrew the consent, the recipient gets 409 `content-withdrawn`.
    """
    return await queries.notes(
        session=session,
        principal=context.principal,
        referral_id=referral_id,
        include_payload=_with_payload(include),
    )


@router.get(
    "/referrals/{referral_id}/fhir",
    name="referrals.getFhir",
    summary="The referral as a FHIR R4 Bundle",
    tags=["fhir"],
    responses=problem_responses(404),
)
async def get_fhir(
    referral_id: uuid.UUID, session: SessionDep, context: ReaderContext
) -> dict[str, Any]:
    """Return a FHIR R4 Bundle (ServiceRequest, Task, Consent references) of the referral; the
    case file stays encrypted (a Binary with the JWE for parties, nothing for auditors)."""
    referral = await service.read(session=session, context=context, referral_id=referral_id)
    return fhir.bundle(referral)


@router.post(
    "/internal/consent-withdrawals",
    name="internal.consentWithdrawals.apply",
    summary="A consent was withdrawn (internal)",
    responses=problem_responses(422),
)
async def consent_withdrawn(
    withdrawal: WithdrawalNotice, session: SessionDep, context: InternalCallerContext
) -> WithdrawalResult:
    """Cancel every active referral resting on the withdrawn consent (consent service only)."""
    cancelled = await status_changes.cancel_for_withdrawal(
        session=session,
        subject_ref=withdrawal.subject_ref,
        consent_id=str(withdrawal.consent_id),
        subject_key=context.subject_key,
        request_id=context.request_id,
    )
    return WithdrawalResult(cancelled_referral_ids=cancelled)


def _created(response: Response, referral: ReferralRead) -> ReferralRead:
    """A created referral's answer: where it lives and the version to send in If-Match."""
    response.headers["Location"] = f"/referrals/{referral.id}"
    response.headers["ETag"] = f'"{_version_of(referral)}"'
    return referral


def _version_of(referral: ReferralRead) -> int:
    return referral.version
