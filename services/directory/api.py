"""HTTP routes of the directory service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import costs, programmes, resolution, search
from services.directory import service as directory
from services.directory.codes import check_admin_area, check_country
from services.directory.dependencies import Admin, Reader, RequestId, Resolver, SelfService
from services.directory.schemas import (
    AgreementCreate,
    AgreementRead,
    AgreementUpdate,
    Availability,
    FocalPointCreate,
    FocalPointRead,
    FocalPointUpdate,
    Jwks,
    KeyCreate,
    KeyRead,
    KeyUpdate,
    OrganisationCreate,
    OrganisationEventRead,
    OrganisationRead,
    OrganisationUpdate,
    ProgrammeCreate,
    ProgrammeRead,
    ProgrammeUpdate,
    Resolution,
    SearchPage,
    ServiceCreate,
    ServiceRead,
    ServiceUpdate,
)
from services.directory.shaping import (
    agreement_read,
    event_read,
    key_read,
    organisation_read,
    to_read,
)
from shared.auth import Principal
from shared.db import ReadSessionDep, SessionDep
from shared.errors import BadRequest, problem_responses
from shared.i18n import N_, Message
from shared.openapi import IsoDateTime
from shared.pagination import Page, PageParams, decode_cursor, encode_cursor, page_params
from shared.partner_urls import UrlPolicyDep
from shared.vocabulary import Purpose, ServiceCategory

router = APIRouter()
ReadT = TypeVar("ReadT", bound=BaseModel)

IfMatch = Annotated[
    str | None,
    Header(description="ETag of the version you read; a mismatch answers 412.", examples=['"3"']),
]
Paging = Annotated[PageParams, Depends(page_params)]
ProgrammeCodeQuery = Annotated[str, Query(max_length=64, examples=["eu-reintegration-2026"])]
ProgrammeCodePath = Annotated[str, Path(max_length=64, examples=["eu-reintegration-2026"])]


def _after(paging: PageParams) -> uuid.UUID | None:
    if paging.cursor is None:
        return None
    key = decode_cursor(paging.cursor)
    try:
        return uuid.UUID(str(key[0]))
    except (ValueError, IndexError):
        raise BadRequest(
            N_("The cursor is not one we issued; start again without 'cursor'.")
        ) from None


def _paged(items: list[Any], rows: list[Any], paging: PageParams) -> dict[str, Any]:
    full = len(rows) == paging.limit
    return {"items": items, "next_cursor": encode_cursor([str(rows[-1].id)]) if full else None}


def _tagged(response: Response, row: Any, read: type[ReadT]) -> ReadT:
    response.headers["ETag"] = directory.etag(row)
    return to_read(row, read)


async def _with_shares(session: AsyncSession, response: Response, agreement: Any) -> AgreementRead:
    response.headers["ETag"] = directory.etag(agreement)
    shares = await costs.shares_of(session=session, agreement_ids=[agreement.id])
    return agreement_read(agreement, shares[agreement.id])


def _organisations(
    principal: Principal, rows: list[Any], paging: PageParams
) -> Page[OrganisationRead]:
    items = [organisation_read(principal, row) for row in rows]
    return Page[OrganisationRead].model_validate(_paged(items, rows, paging))


# Organisations


@router.get(
    "/organisations",
    name="directory.organisations.list",
    tags=["organisations"],
    summary="List organisations",
    responses=problem_responses(400, 422),
)
async def list_organisations(
    session: SessionDep,
    principal: Reader,
    paging: Paging,
    country: Annotated[str | None, Query(examples=["NG"])] = None,
    stakeholder_type: Annotated[str | None, Query(examples=["ngo"])] = None,
) -> Page[OrganisationRead]:
    """List the directory's organisations, optionally of one country or stakeholder type.

    `webhook_url` is null except on your own organisation (admins and auditors see all).
    """
    rows = await directory.list_organisations(
        session=session,
        country=country,
        stakeholder_type=stakeholder_type,
        after=_after(paging),
        limit=paging.limit,
    )
    return _organisations(principal, rows, paging)


@router.post(
    "/organisations",
    name="directory.organisations.create",
    status_code=201,
    tags=["organisations"],
    summary="Register an organisation",
    responses=problem_responses(409, 422),
)
async def create_organisation(
    org_in: OrganisationCreate,
    session: SessionDep,
    admin: Admin,
    response: Response,
    url_policy: UrlPolicyDep,
) -> OrganisationRead:
    """Register a partner organisation (admins only).

    A `webhook_url` must be https on the public internet: loopback, private, link-local,
    carrier-grade NAT, multicast and the exchange's own addresses answer 422
    `unsafe-partner-url`, and nothing is stored.
    """
    org = await directory.create_organisation(
        session=session, org_in=org_in, url_policy=url_policy, principal=admin
    )
    return _tagged(response, org, OrganisationRead)


@router.get(
    "/organisations/{org_id}",
    name="directory.organisations.get",
    tags=["organisations"],
    summary="Read an organisation",
    responses=problem_responses(404),
)
async def get_organisation(
    org_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> OrganisationRead:
    """Return one organisation; its ETag header is what a later PATCH sends as If-Match.

    `webhook_url` is null unless it is your own organisation (admins and auditors see it).
    """
    org = await directory.get_organisation(session=session, org_id=org_id)
    response.headers["ETag"] = directory.etag(org)
    return organisation_read(principal, org)


@router.patch(
    "/organisations/{org_id}",
    name="directory.organisations.update",
    tags=["organisations"],
    summary="Change an organisation",
    responses=problem_responses(404, 412, 422),
)
async def update_organisation(
    org_id: uuid.UUID,
    org_in: OrganisationUpdate,
    session: SessionDep,
    principal: SelfService,
    response: Response,
    url_policy: UrlPolicyDep,
    if_match: IfMatch = None,
) -> OrganisationRead:
    """Change an organisation (admins); a partner may change only its own `webhook_url`.

    The `webhook_url` rules are those of registration (422 `unsafe-partner-url`).
    """
    org = await directory.update_organisation(
        session=session,
        principal=principal,
        org_id=org_id,
        org_in=org_in,
        if_match=if_match,
        url_policy=url_policy,
    )
    return _tagged(response, org, OrganisationRead)


@router.delete(
    "/organisations/{org_id}",
    name="directory.organisations.delete",
    status_code=204,
    tags=["organisations"],
    summary="Remove an organisation",
    responses=problem_responses(404, 412),
)
async def delete_organisation(
    org_id: uuid.UUID, session: SessionDep, _admin: Admin, if_match: IfMatch = None
) -> Response:
    """Remove an organisation with its services, focal points, keys and agreements (admins)."""
    await directory.delete_organisation(session=session, org_id=org_id, if_match=if_match)
    return Response(status_code=204)


@router.get(
    "/organisations/{org_id}/jwks",
    name="directory.keys.getJwks",
    tags=["keys"],
    summary="Public keys to encrypt to",
    responses=problem_responses(404),
)
async def organisation_jwks(org_id: uuid.UUID, session: SessionDep, _principal: Reader) -> Jwks:
    """Return the organisation's encryption keys that are active and valid now (JWKS)."""
    return Jwks.from_stored(await directory.jwks(session=session, org_id=org_id))


@router.get(
    "/organisations/{org_id}/keys",
    name="directory.keys.list",
    tags=["keys"],
    summary="List an organisation's keys",
    responses=problem_responses(404),
)
async def list_keys(org_id: uuid.UUID, session: SessionDep, principal: Reader) -> list[KeyRead]:
    """List every registered key of the organisation, whatever its status, with who added it.

    Only the organisation itself, admins and auditors may; other partners get 403 and read
    the keys to encrypt to at `GET .../jwks`.
    """
    keys = await directory.list_keys(session=session, principal=principal, org_id=org_id)
    return [key_read(key) for key in keys]


@router.post(
    "/organisations/{org_id}/keys",
    name="directory.keys.create",
    status_code=201,
    tags=["keys"],
    summary="Register a public key",
    responses=problem_responses(404, 409, 422),
)
async def add_key(
    org_id: uuid.UUID, key_in: KeyCreate, session: SessionDep, principal: SelfService
) -> KeyRead:
    """Register a public encryption JWK (EC P-256 or X25519, `use: enc`); never a private key.

    Your organisation registers its own keys. When a directory admin registers one for another
    organisation, the key is `pending` (never encrypted to) until that organisation confirms
    it, and the organisation sees a `key.added-by-admin` event at `GET .../events`.
    """
    key = await directory.add_key(
        session=session, principal=principal, org_id=org_id, key_in=key_in
    )
    return key_read(key)


@router.patch(
    "/organisations/{org_id}/keys/{kid}",
    name="directory.keys.update",
    tags=["keys"],
    summary="Retire or revoke a key",
    responses=problem_responses(404, 422),
)
async def change_key(
    org_id: uuid.UUID, kid: str, key_in: KeyUpdate, session: SessionDep, principal: SelfService
) -> KeyRead:
    """Retire a key (no new referrals use it) or revoke it (never used again).

    A `pending` key can be revoked (refused) but not retired.
    """
    key = await directory.change_key_status(
        session=session, principal=principal, org_id=org_id, kid=kid, status=key_in.status
    )
    return key_read(key)


@router.post(
    "/organisations/{org_id}/keys/{kid}/confirm",
    name="directory.keys.confirm",
    tags=["keys"],
    summary="Confirm a key an admin registered for you",
    responses=problem_responses(404, 409),
)
async def confirm_key(
    org_id: uuid.UUID, kid: str, session: SessionDep, principal: SelfService
) -> KeyRead:
    """Accept a `pending` key a directory admin registered for your organisation.

    Only your organisation's own clients may confirm; from then on referrals to you are also
    encrypted to this key. Check its thumbprint in `GET .../events` first; if it is not
    yours, revoke it instead (PATCH status `revoked`).
    """
    key = await directory.confirm_key(session=session, principal=principal, org_id=org_id, kid=kid)
    return key_read(key)


@router.get(
    "/organisations/{org_id}/events",
    name="directory.keys.listEvents",
    tags=["keys"],
    summary="What was done to an organisation's keys",
    responses=problem_responses(400, 404, 422),
)
async def list_events(
    org_id: uuid.UUID, session: SessionDep, principal: Reader, paging: Paging
) -> Page[OrganisationEventRead]:
    """List, oldest first, every key added, confirmed, retired or revoked, by whom and when.

    `key.added-by-admin` means a directory admin registered a key for your organisation; it
    stays pending until you confirm it. Only the organisation itself, admins and auditors
    may read this.
    """
    rows = await directory.list_events(
        session=session,
        principal=principal,
        org_id=org_id,
        after=_after(paging),
        limit=paging.limit,
    )
    items = [event_read(row) for row in rows]
    return Page[OrganisationEventRead].model_validate(_paged(items, rows, paging))


@router.get(
    "/organisations/{org_id}/members",
    name="directory.organisations.listMembers",
    tags=["organisations"],
    summary="Providers a coordinator coordinates",
    responses=problem_responses(404),
)
async def list_members(
    org_id: uuid.UUID, session: SessionDep, principal: Reader, paging: Paging
) -> Page[OrganisationRead]:
    """List the organisations that name this one as their coordinator."""
    rows = await directory.list_members(
        session=session, org_id=org_id, after=_after(paging), limit=paging.limit
    )
    return _organisations(principal, rows, paging)


@router.get(
    "/coordinators/resolve",
    name="directory.coordinators.resolve",
    tags=["organisations"],
    summary="Who coordinates an area",
    responses=problem_responses(400, 404, 422),
)
async def resolve_coordinator(
    session: SessionDep,
    principal: Reader,
    country: Annotated[str, Query(examples=["NG"], min_length=2, max_length=2)],
    admin_area: Annotated[str | None, Query(examples=["NG-LA"], max_length=10)] = None,
    category: ServiceCategory | None = None,
) -> OrganisationRead:
    """Return the organisation coordinating this country (and area, category) for open referrals."""
    try:
        check_country(country)
        if admin_area:
            check_admin_area(admin_area, country)
    except ValueError as error:
        raise BadRequest(Message("{error}.", error=error.args[0])) from None
    org = await directory.resolve_coordinator(
        session=session,
        country=country,
        admin_area=admin_area,
        category=category.value if category else None,
    )
    return organisation_read(principal, org)


# Services


@router.get(
    "/services/search",
    name="directory.services.search",
    tags=["services"],
    summary="Search services",
    response_model=SearchPage,
    responses=problem_responses(400, 422),
    openapi_extra={"parameters": search.openapi_parameters()},
)
async def search_services(
    request: Request,
    session: SessionDep,
    _principal: Reader,
    params: Annotated[search.SearchParams, Depends(search.search_params)],
) -> Response:
    """Find services by text, category, place, language, distance, intake and opening hours.

    Text matches every word (accents and case ignored; on PostgreSQL also French and English
    word forms, "formations" finds "formation") and ranks name matches first, then services
    offering the caller's language. `display_name` is the name in the caller's language
    (`Accept-Language: fr` or `en`), else English. `near` with `radius_km` sorts nearest first.
    Follow `next_cursor` for the next page.
    """
    pool = request.app.state.search_pool
    page = await search.search(session=session, params=params, pool=pool)
    # The hot path: serialised once by orjson instead of re-validated against SearchPage.
    return Response(orjson.dumps(page), media_type="application/json")


@router.post(
    "/services",
    name="directory.services.create",
    status_code=201,
    tags=["services"],
    summary="Register a service",
    responses=problem_responses(409, 422),
)
async def create_service(
    service_in: ServiceCreate, session: SessionDep, _admin: Admin, response: Response
) -> ServiceRead:
    """Register a service offered by an organisation (admins only)."""
    service = await directory.create_service(session=session, service_in=service_in)
    return _tagged(response, service, ServiceRead)


@router.get(
    "/services/{service_id}",
    name="directory.services.get",
    tags=["services"],
    summary="Read a service",
    responses=problem_responses(404),
)
async def get_service(
    service_id: uuid.UUID, session: ReadSessionDep, _principal: Reader, response: Response
) -> ServiceRead:
    """Return one service with its ETag."""
    service = await directory.get_service(session=session, service_id=service_id)
    return _tagged(response, service, ServiceRead)


@router.patch(
    "/services/{service_id}",
    name="directory.services.update",
    tags=["services"],
    summary="Change a service",
    responses=problem_responses(404, 412, 422),
)
async def update_service(
    service_id: uuid.UUID,
    service_in: ServiceUpdate,
    session: SessionDep,
    principal: SelfService,
    response: Response,
    if_match: IfMatch = None,
) -> ServiceRead:
    """Change a service (admins); its organisation may only set `accepting_referrals`."""
    service = await directory.update_service(
        session=session,
        principal=principal,
        service_id=service_id,
        service_in=service_in,
        if_match=if_match,
    )
    return _tagged(response, service, ServiceRead)


@router.delete(
    "/services/{service_id}",
    name="directory.services.delete",
    status_code=204,
    tags=["services"],
    summary="Remove a service",
    responses=problem_responses(404, 412),
)
async def delete_service(
    service_id: uuid.UUID, session: SessionDep, _admin: Admin, if_match: IfMatch = None
) -> Response:
    """Remove a service and its dedicated focal points (admins)."""
    await directory.delete_service(session=session, service_id=service_id, if_match=if_match)
    return Response(status_code=204)


@router.get(
    "/services/{service_id}/availability",
    name="directory.services.getAvailability",
    tags=["services"],
    summary="Is the service's focal point open?",
    responses=problem_responses(400, 404, 422),
)
async def service_availability(
    service_id: uuid.UUID,
    session: SessionDep,
    _principal: Reader,
    at: Annotated[
        IsoDateTime | None,
        Query(
            description="Moment to check (ISO 8601 with zone); default now.",
            examples=["2026-03-02T09:00:00Z"],
        ),
    ] = None,
) -> Availability:
    """Say whether the focal point is open at `at`, when it next opens and when an answer is due."""
    if at is not None and at.tzinfo is None:
        raise BadRequest(N_("Give 'at' with a time zone, e.g. 2026-03-02T09:00:00Z."))
    return await resolution.availability(session=session, service_id=service_id, at=at)


# Focal points


@router.get(
    "/focal-points",
    name="directory.focalPoints.list",
    tags=["focal points"],
    summary="List focal points",
)
async def list_focal_points(
    session: SessionDep,
    _principal: Reader,
    paging: Paging,
    organisation_id: uuid.UUID | None = None,
) -> Page[FocalPointRead]:
    """List focal points, optionally of one organisation."""
    rows = await directory.list_focal_points(
        session=session, organisation_id=organisation_id, after=_after(paging), limit=paging.limit
    )
    items = [to_read(row, FocalPointRead) for row in rows]
    return Page[FocalPointRead].model_validate(_paged(items, rows, paging))


@router.post(
    "/focal-points",
    name="directory.focalPoints.create",
    status_code=201,
    tags=["focal points"],
    summary="Name a focal point",
    responses=problem_responses(409, 422),
)
async def create_focal_point(
    focal_in: FocalPointCreate, session: SessionDep, principal: SelfService, response: Response
) -> FocalPointRead:
    """Name a focal point of your organisation (admins: of any), with hours and response time."""
    focal_point = await directory.create_focal_point(
        session=session, principal=principal, focal_in=focal_in
    )
    return _tagged(response, focal_point, FocalPointRead)


@router.get(
    "/focal-points/{focal_point_id}",
    name="directory.focalPoints.get",
    tags=["focal points"],
    summary="Read a focal point",
    responses=problem_responses(404),
)
async def get_focal_point(
    focal_point_id: uuid.UUID, session: SessionDep, _principal: Reader, response: Response
) -> FocalPointRead:
    """Return one focal point with its ETag."""
    focal_point = await directory.get_focal_point(session=session, focal_point_id=focal_point_id)
    return _tagged(response, focal_point, FocalPointRead)


@router.patch(
    "/focal-points/{focal_point_id}",
    name="directory.focalPoints.update",
    tags=["focal points"],
    summary="Change a focal point",
    responses=problem_responses(404, 412, 422),
)
async def update_focal_point(
    focal_point_id: uuid.UUID,
    focal_in: FocalPointUpdate,
    session: SessionDep,
    principal: SelfService,
    response: Response,
    if_match: IfMatch = None,
) -> FocalPointRead:
    """Change a focal point of your organisation (admins: of any)."""
    focal_point = await directory.update_focal_point(
        session=session,
        principal=principal,
        focal_point_id=focal_point_id,
        focal_in=focal_in,
        if_match=if_match,
    )
    return _tagged(response, focal_point, FocalPointRead)


@router.delete(
    "/focal-points/{focal_point_id}",
    name="directory.focalPoints.delete",
    status_code=204,
    tags=["focal points"],
    summary="Remove a focal point",
    responses=problem_responses(404, 412),
)
async def delete_focal_point(
    focal_point_id: uuid.UUID, session: SessionDep, principal: SelfService, if_match: IfMatch = None
) -> Response:
    """Remove a focal point of your organisation (admins: of any)."""
    await directory.delete_focal_point(
        session=session, principal=principal, focal_point_id=focal_point_id, if_match=if_match
    )
    return Response(status_code=204)


# Agreements


@router.get(
    "/agreements/resolve",
    name="directory.agreements.resolve",
    tags=["agreements"],
    summary="The agreement in force for a referral",
    responses=problem_responses(404, 422),
)
async def resolve_agreement(
    session: SessionDep,
    principal: Resolver,
    sender_org: Annotated[uuid.UUID, Query(description="The sending organisation.")],
    service_id: Annotated[uuid.UUID, Query(description="The service referred to.")],
    purpose: Purpose = Purpose.REFERRAL,
    programme: Annotated[
        ProgrammeCodeQuery | None,
        Query(description="The programme the referral belongs to (its code)."),
    ] = None,
) -> Resolution:
    """Return the SOP in force, the service, both parties' current keys and the focal points.

    A host office asks with its own organisation as `sender_org` (another is 403) and sees the
    recipient's `webhook_url` as null. `agreement.emergency_categories` is what an emergency
    override may disclose. When agreements of several programmes apply, name one in
    `programme` (else 422 `programme-required`, listing their codes).
    """
    return await resolution.resolve(
        session=session,
        principal=principal,
        sender_org_id=sender_org,
        service_id=service_id,
        purpose=purpose.value,
        programme=programme,
    )


@router.get(
    "/agreements",
    name="directory.agreements.list",
    tags=["agreements"],
    summary="List agreements",
    responses=problem_responses(400, 422),
)
async def list_agreements(
    session: SessionDep,
    principal: Reader,
    paging: Paging,
    provider_org_id: uuid.UUID | None = None,
    sender_org_id: uuid.UUID | None = None,
) -> Page[AgreementRead]:
    """List the agreement versions your organisation is party to, optionally of one provider or
    sender. A party is the provider, the sender, or (for agreements open to any host office)
    every host office; admins and auditors see every agreement.
    """
    rows = await directory.list_agreements(
        session=session,
        principal=principal,
        provider_org_id=provider_org_id,
        sender_org_id=sender_org_id,
        after=_after(paging),
        limit=paging.limit,
    )
    shares = await costs.shares_of(session=session, agreement_ids=[row.id for row in rows])
    items = [agreement_read(row, shares[row.id]) for row in rows]
    return Page[AgreementRead].model_validate(_paged(items, rows, paging))


@router.post(
    "/agreements",
    name="directory.agreements.create",
    status_code=201,
    tags=["agreements"],
    summary="Register an agreement (SOP/MoU) version",
    responses=problem_responses(409, 422),
)
async def create_agreement(
    agreement_in: AgreementCreate,
    session: SessionDep,
    admin: Admin,
    request_id: RequestId,
    response: Response,
) -> AgreementRead:
    """Register an agreement, or a new version with `series_id`; overlapping versions are 409.

    Only versions of the same sender, provider, programme, purpose and service category
    overlap: one office and one provider may hold agreements under several programmes at once.
    `programme` must be a registered code (422 `unknown-programme`), and the agreement must lie
    within the programme's period, its sender in a host country and its provider in a country
    of origin of the programme (422 `outside-programme`).

    `emergency_categories` must be a subset of `permitted_categories` (else 422); left out, it
    is identity.basic, contact and health.mental, keeping only those the agreement permits.

    A new version keeps the cost-share rules of the version before it for the service
    categories it still covers (new ids; change them under `.../cost-shares`).
    """
    agreement = await directory.create_agreement(session=session, agreement_in=agreement_in)
    await costs.carry_over(
        session=session, principal=admin, request_id=request_id, agreement=agreement
    )
    return await _with_shares(session, response, agreement)


@router.get(
    "/agreements/{agreement_id}",
    name="directory.agreements.get",
    tags=["agreements"],
    summary="Read an agreement version",
    responses=problem_responses(404),
)
async def get_agreement(
    agreement_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> AgreementRead:
    """Return one agreement version with its ETag and its cost-share rules; 404 unless your
    organisation is a party."""
    agreement = await directory.visible_agreement(
        session=session, principal=principal, agreement_id=agreement_id
    )
    return await _with_shares(session, response, agreement)


@router.patch(
    "/agreements/{agreement_id}",
    name="directory.agreements.update",
    tags=["agreements"],
    summary="End or correct an agreement version",
    responses=problem_responses(404, 412, 422),
)
async def update_agreement(
    agreement_id: uuid.UUID,
    agreement_in: AgreementUpdate,
    session: SessionDep,
    _admin: Admin,
    response: Response,
    if_match: IfMatch = None,
) -> AgreementRead:
    """End a version (`valid_until`) or correct its programme, document hash or
    `emergency_categories` (a subset of its permitted categories) (admins)."""
    agreement = await directory.update_agreement(
        session=session, agreement_id=agreement_id, agreement_in=agreement_in, if_match=if_match
    )
    return await _with_shares(session, response, agreement)


# Programmes


@router.get(
    "/programmes",
    name="directory.programmes.list",
    tags=["programmes"],
    summary="List programmes",
    responses=problem_responses(400, 422),
)
async def list_programmes(
    session: SessionDep, _principal: Reader, paging: Paging
) -> Page[ProgrammeRead]:
    """List the registered programmes: the codes agreements and referrals name."""
    rows = await programmes.list_programmes(
        session=session, after=_after(paging), limit=paging.limit
    )
    items = [to_read(row, ProgrammeRead) for row in rows]
    return Page[ProgrammeRead].model_validate(_paged(items, rows, paging))


@router.post(
    "/programmes",
    name="directory.programmes.create",
    status_code=201,
    tags=["programmes"],
    summary="Register a programme",
    responses=problem_responses(409, 422),
)
async def create_programme(
    programme_in: ProgrammeCreate, session: SessionDep, _admin: Admin, response: Response
) -> ProgrammeRead:
    """Register a programme with its donor, host and origin countries and period (admins).

    A second programme with the same `code` is 409 `duplicate-programme`.
    """
    programme = await programmes.create_programme(session=session, programme_in=programme_in)
    return _tagged(response, programme, ProgrammeRead)


@router.get(
    "/programmes/{code}",
    name="directory.programmes.get",
    tags=["programmes"],
    summary="Read a programme",
    responses=problem_responses(404),
)
async def get_programme(
    code: ProgrammeCodePath, session: SessionDep, _principal: Reader, response: Response
) -> ProgrammeRead:
    """Return one programme with its ETag."""
    programme = await programmes.get_programme(session=session, code=code)
    return _tagged(response, programme, ProgrammeRead)


@router.patch(
    "/programmes/{code}",
    name="directory.programmes.update",
    tags=["programmes"],
    summary="Change a programme",
    responses=problem_responses(404, 412, 422),
)
async def update_programme(
    code: ProgrammeCodePath,
    programme_in: ProgrammeUpdate,
    session: SessionDep,
    _admin: Admin,
    response: Response,
    if_match: IfMatch = None,
) -> ProgrammeRead:
    """Change a programme (admins); 422 `outside-programme` if an agreement of it no longer fits."""
    programme = await programmes.update_programme(
        session=session, code=code, programme_in=programme_in, if_match=if_match
    )
    return _tagged(response, programme, ProgrammeRead)


@router.delete(
    "/programmes/{code}",
    name="directory.programmes.delete",
    status_code=204,
    tags=["programmes"],
    summary="Remove a programme",
    responses=problem_responses(404, 409, 412),
)
async def delete_programme(
    code: ProgrammeCodePath, session: SessionDep, _admin: Admin, if_match: IfMatch = None
) -> Response:
    """Remove a programme no agreement belongs to (admins); else 409 `programme-in-use`."""
    await programmes.delete_programme(session=session, code=code, if_match=if_match)
    return Response(status_code=204)
