"""Rules of the directory: who may change what, key hygiene, agreement versions, resolution."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import pathways, programmes, repository
from services.directory.codes import list_key, search_text
from services.directory.errors import (
    AgreementNotFound,
    ConfirmationByOrganisationOnly,
    DuplicateKid,
    EmergencyCategoriesNotPermitted,
    FieldNotEditable,
    FocalPointNotFound,
    InvalidKey,
    InvalidReference,
    KeyNotFound,
    KeyNotPending,
    NoCoordinator,
    NotYourOrganisation,
    OrganisationNotFound,
    OverlappingAgreement,
    ProgrammeRequired,
    ServiceNotFound,
)
from services.directory.models import (
    Agreement,
    EngagementChange,
    FocalPoint,
    Organisation,
    OrganisationEvent,
    OrganisationKey,
    Service,
)
from services.directory.repository import Row
from services.directory.rows import check_if_match as check_if_match
from services.directory.rows import etag as etag
from services.directory.rows import refuse_nulls as refuse_nulls
from services.directory.rows import unused_id
from services.directory.schemas import (
    DEFAULT_EMERGENCY_CATEGORIES,
    AgreementCreate,
    AgreementUpdate,
    FocalPointCreate,
    FocalPointUpdate,
    KeyCreate,
    OrganisationCreate,
    OrganisationUpdate,
    ServiceCreate,
    ServiceUpdate,
)
from shared.auth import Principal
from shared.clock import utcnow
from shared.crypto import KEY_ALG, public_jwk_problems, thumbprint
from shared.errors import ServiceError
from shared.i18n import N_, Joined, Message
from shared.ids import new_id
from shared.partner_urls import UnsafePartnerUrl, UrlPolicy, check_registered_url
from shared.vocabulary import DataCategory, Role

# Roles whose organisation may maintain its own focal points, keys, webhook and intake flag.
SELF_SERVICE_ROLES = (Role.PROVIDER, Role.COORDINATOR, Role.HOST_OFFICE)
PROVIDER_ORGANISATION_FIELDS = frozenset({"webhook_url"})
PROVIDER_SERVICE_FIELDS = frozenset({"accepting_referrals"})
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")
PUBLIC_JWK_MEMBERS = ("kty", "crv", "x", "y", "kid")
# Roles that see every organisation's webhook, keys' history and agreements: the steward, the
# data-protection auditors and the refex services themselves (referral, consent).
OVERSIGHT_ROLES = (Role.ADMIN, Role.AUDITOR, Role.INTERNAL_CALLER)


def bump(row: Any) -> None:
    row.row_version += 1
    row.updated_at = utcnow()


def may_edit_organisation(principal: Principal, org_id: uuid.UUID) -> bool:
    """Return True for admins, and for self-service roles acting on their own organisation."""
    if principal.has_any_role(Role.ADMIN):
        return True
    return principal.has_any_role(*SELF_SERVICE_ROLES) and principal.org_id == str(org_id)


def _require_edit(principal: Principal, org_id: uuid.UUID) -> None:
    if not may_edit_organisation(principal, org_id):
        raise NotYourOrganisation


def sees_private_details(principal: Principal, org_id: uuid.UUID) -> bool:
    """Return True when the caller may see the organisation's webhook, key history and events."""
    return principal.has_any_role(*OVERSIGHT_ROLES) or principal.org_id == str(org_id)


def _require_private_view(principal: Principal, org_id: uuid.UUID) -> None:
    if not sees_private_details(principal, org_id):
        raise NotYourOrganisation(
            N_(
                "Only the organisation itself, admins and auditors may see its keys' history and "
                "events. To encrypt to it, read its current keys at GET .../jwks."
            )
        )


def _require_fields(principal: Principal, changed: set[str], allowed: frozenset[str]) -> None:
    if principal.has_any_role(Role.ADMIN):
        return
    refused = sorted(changed - allowed)
    if refused:
        raise FieldNotEditable(
            Message(
                "Only the directory steward (admin) may change: {refused}. Your "
                "organisation may change: {allowed}.",
                refused=", ".join(refused),
                allowed=", ".join(sorted(allowed)),
            )
        )


async def _existing(
    session: AsyncSession, model: type[Row], row_id: uuid.UUID, missing: type[ServiceError]
) -> Row:
    row = await repository.get(session, model, row_id)
    if row is None:
        raise missing
    return row


async def _org(session: AsyncSession, org_id: uuid.UUID) -> Organisation:
    return await _existing(session, Organisation, org_id, OrganisationNotFound)


async def _referenced_org(session: AsyncSession, org_id: uuid.UUID, field: str) -> Organisation:
    org = await repository.get(session, Organisation, org_id)
    if org is None:
        raise InvalidReference(
            Message("'{field}' names no organisation; check the id.", field=field)
        )
    return org


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Turn URLs and enums from the schemas into the plain JSON values we store."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("website", "webhook_url") and value is not None:
            value = str(value)
        out[key] = value
    return out


# Organisations

STRICT_URLS = UrlPolicy()


async def checked_webhook_url(url: object, url_policy: UrlPolicy, loc: str = "body") -> str | None:
    """Return the webhook URL normalised, or a 422 naming the field when it is not allowed."""
    if url is None:
        return None
    try:
        return await check_registered_url(str(url), url_policy)
    except UnsafePartnerUrl as refusal:
        raise refusal.for_field("webhook_url", [loc, "webhook_url"]) from None


async def create_organisation(
    *,
    session: AsyncSession,
    org_in: OrganisationCreate,
    url_policy: UrlPolicy = STRICT_URLS,
    principal: Principal | None = None,
) -> Organisation:
    """Register an organisation."""
    webhook_url = await checked_webhook_url(org_in.webhook_url, url_policy)
    org_id = await unused_id(session, Organisation, org_in.id)
    if org_in.coordinator_org_id is not None:
        await _referenced_org(session, org_in.coordinator_org_id, "coordinator_org_id")
    values = _plain(org_in.model_dump(mode="json", exclude={"id"}))
    values["webhook_url"] = webhook_url
    values["coordinator_org_id"] = org_in.coordinator_org_id
    org = Organisation(id=org_id, row_version=1, **values)
    session.add(org)
    await session.flush()
    # The history starts at registration: from no level to the one registered.
    session.add(
        EngagementChange(
            id=new_id(),
            organisation_id=org.id,
            from_level=None,
            to_level=org.engagement_level,
            planned_activities=[],
            actor_client_id=principal.client_id if principal else "refex",
            actor_org_id=principal.org_id if principal else "refex",
            changed_at=utcnow(),
        )
    )
    return org


async def list_organisations(
    *,
    session: AsyncSession,
    country: str | None,
    stakeholder_type: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Organisation]:
    """Return a page of organisations, optionally of one country or stakeholder type."""
    return await repository.organisation_page(
        session, after=after, limit=limit, country=country, stakeholder_type=stakeholder_type
    )


async def get_organisation(*, session: AsyncSession, org_id: uuid.UUID) -> Organisation:
    """Return an organisation or raise OrganisationNotFound."""
    return await _org(session, org_id)


async def list_members(
    *, session: AsyncSession, org_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Organisation]:
    """Return a page of the organisations that name this one as their coordinator."""
    await _org(session, org_id)
    return await repository.organisation_page(
        session, after=after, limit=limit, coordinator_org_id=org_id
    )


async def update_organisation(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    org_in: OrganisationUpdate,
    if_match: str | None,
    url_policy: UrlPolicy = STRICT_URLS,
) -> Organisation:
    """Change an organisation; providers may change only their own webhook."""
    org = await _org(session, org_id)
    _require_edit(principal, org_id)
    changes = org_in.model_dump(mode="json", exclude_unset=True)
    refuse_nulls(org, changes)
    _require_fields(principal, set(changes), PROVIDER_ORGANISATION_FIELDS)
    check_if_match(org, if_match)
    if "webhook_url" in changes:
        changes["webhook_url"] = await checked_webhook_url(org_in.webhook_url, url_policy)
    if "coordinator_org_id" in changes:
        changes["coordinator_org_id"] = org_in.coordinator_org_id
        if org_in.coordinator_org_id is not None:
            await _referenced_org(session, org_in.coordinator_org_id, "coordinator_org_id")
    country = changes.get("country", org.country)
    for area in changes.get("admin_areas", org.admin_areas):
        if not area.startswith(f"{country}-"):
            raise InvalidReference(
                Message(
                    "Admin area '{area}' is not in country {country}; fix one.",
                    area=area,
                    country=country,
                )
            )
    level = changes.get("engagement_level", org.engagement_level)
    if level != org.engagement_level:
        add_engagement_change(
            session,
            org=org,
            principal=principal,
            to_level=level,
            reason=None,
            planned_activities=[],
        )
    for key, value in _plain(changes).items():
        setattr(org, key, value)
    bump(org)
    await session.flush()
    return org


async def delete_organisation(
    *, session: AsyncSession, org_id: uuid.UUID, if_match: str | None
) -> None:
    """Remove an organisation with its services, focal points, keys and agreements."""
    org = await _org(session, org_id)
    check_if_match(org, if_match)
    await session.delete(org)
    await session.flush()


def add_engagement_change(
    session: AsyncSession,
    *,
    org: Organisation,
    principal: Principal,
    to_level: str,
    reason: str | None,
    planned_activities: list[dict[str, Any]],
) -> EngagementChange:
    """Record a move of the organisation's engagement level (the caller sets the level)."""
    change = EngagementChange(
        id=new_id(),
        organisation_id=org.id,
        from_level=org.engagement_level,
        to_level=to_level,
        reason=reason,
        planned_activities=planned_activities,
        actor_client_id=principal.client_id,
        actor_org_id=principal.org_id,
        changed_at=utcnow(),
    )
    session.add(change)
    return change


# Keys


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """Return the validated public JWK to store, or raise saying what is wrong with it.

    The rules are the encryption layer's own (`shared.crypto.public_jwk_problems`), so every
    key the directory accepts is one the referral service can encrypt to.
    """
    if any(member in jwk for member in PRIVATE_JWK_MEMBERS):
        raise InvalidKey(
            N_(
                "The JWK contains private key material ('d'). Register only the public part and "
                "keep the private key with you; nothing was stored."
            )
        )
    candidate = {"use": "enc", **jwk}
    problems = public_jwk_problems(candidate)
    if problems:
        raise InvalidKey(Joined([*problems, N_("Nothing was stored.")]))
    public = {member: candidate[member] for member in PUBLIC_JWK_MEMBERS if member in candidate}
    return {**public, "use": "enc", "alg": KEY_ALG}


def acting_role(principal: Principal, org_id: uuid.UUID) -> str:
    """Name the role the caller acts in on this organisation: its own role, or admin."""
    if principal.org_id != str(org_id):
        return Role.ADMIN.value
    roles = (*SELF_SERVICE_ROLES, *OVERSIGHT_ROLES)
    return next(role.value for role in roles if principal.has_any_role(role))


def _by_admin(principal: Principal, org_id: uuid.UUID) -> bool:
    """Return True for an admin acting on another organisation, which must then be told."""
    return principal.org_id != str(org_id)


def _record_key_event(
    session: AsyncSession, *, key: OrganisationKey, event_type: str, principal: Principal
) -> None:
    session.add(
        OrganisationEvent(
            id=new_id(),
            organisation_id=key.organisation_id,
            type=event_type,
            kid=key.kid,
            thumbprint=thumbprint(key.jwk),
            actor_client_id=principal.client_id,
            actor_org_id=principal.org_id,
            actor_role=acting_role(principal, key.organisation_id),
            by_admin=_by_admin(principal, key.organisation_id),
            occurred_at=utcnow(),
        )
    )


async def add_key(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, key_in: KeyCreate
) -> OrganisationKey:
    """Register a public encryption key; one an admin registers for another org waits as pending.

    A pending key is never encrypted to until the organisation itself confirms it, and the
    organisation sees a `key.added-by-admin` event either way.
    """
    await _org(session, org_id)
    _require_edit(principal, org_id)
    jwk = public_jwk(key_in.jwk)
    now = utcnow()
    valid_from = key_in.valid_from or now
    if key_in.valid_until is not None and key_in.valid_until <= max(now, valid_from):
        raise InvalidKey(N_("The key's validity has ended (valid_until); register a current key."))
    if await repository.key_by_kid(session, jwk["kid"]) is not None:
        raise DuplicateKid
    by_admin = _by_admin(principal, org_id)
    key = OrganisationKey(
        id=new_id(),
        organisation_id=org_id,
        kid=jwk["kid"],
        jwk=jwk,
        status="pending" if by_admin else "active",
        valid_from=valid_from,
        valid_until=key_in.valid_until,
        created_at=now,
        added_by_client_id=principal.client_id,
        added_by_org_id=principal.org_id,
        added_by_role=acting_role(principal, org_id),
        added_by_admin=by_admin,
    )
    session.add(key)
    event_type = "key.added-by-admin" if by_admin else "key.added"
    _record_key_event(session, key=key, event_type=event_type, principal=principal)
    await session.flush()
    return key


async def _key_of(session: AsyncSession, org_id: uuid.UUID, kid: str) -> OrganisationKey:
    key = await repository.key_by_kid(session, kid)
    if key is None or key.organisation_id != org_id:
        raise KeyNotFound
    return key


async def confirm_key(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, kid: str
) -> OrganisationKey:
    """Let the organisation accept a key an admin registered for it; from now on it is used."""
    await _org(session, org_id)
    if principal.org_id != str(org_id):
        raise ConfirmationByOrganisationOnly
    key = await _key_of(session, org_id, kid)
    if key.status != "pending":
        raise KeyNotPending(
            Message(
                "This key is {status}, not pending: only a key an admin registered for "
                "your organisation waits for confirmation. Nothing was changed.",
                status=key.status,
            )
        )
    key.status = "active"
    key.confirmed_at = utcnow()
    _record_key_event(session, key=key, event_type="key.confirmed", principal=principal)
    await session.flush()
    return key


async def change_key_status(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, kid: str, status: str
) -> OrganisationKey:
    """Retire or revoke a key; a revoked key can never be reactivated."""
    await _org(session, org_id)
    _require_edit(principal, org_id)
    key = await _key_of(session, org_id, kid)
    if key.status == "revoked" and status != "revoked":
        raise InvalidKey(N_("A revoked key stays revoked; register a new key instead."))
    if key.status == "pending" and status == "retired":
        raise InvalidKey(
            N_(
                "A pending key was never used, so it cannot be retired: revoke it to refuse it, or "
                "let the organisation confirm it."
            )
        )
    if key.status != status:
        key.status = status
        _record_key_event(session, key=key, event_type=f"key.{status}", principal=principal)
    await session.flush()
    return key


async def list_keys(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID
) -> list[OrganisationKey]:
    """Return every key of the organisation, whatever its status, to those who may see them."""
    await _org(session, org_id)
    _require_private_view(principal, org_id)
    return await repository.keys_of(session, org_id)


async def list_events(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
) -> list[OrganisationEvent]:
    """Return the organisation's events, oldest first, to those who may see them."""
    await _org(session, org_id)
    _require_private_view(principal, org_id)
    return await repository.event_page(session, org_id=org_id, after=after, limit=limit)


async def jwks(*, session: AsyncSession, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """Return an organisation's public keys that are active and valid now."""
    await _org(session, org_id)
    return (await repository.valid_keys(session, [org_id], utcnow()))[org_id]


# Services


def _derived_service_columns(service: Service) -> None:
    names = list(service.name.values())
    body = [*service.description.values(), service.eligibility or ""]
    service.search_name = search_text(*names)
    service.search_body = search_text(*body)
    service.languages_key = list_key(service.languages)
    service.areas_key = list_key(service.admin_areas)
    location = service.location or {}
    service.latitude = location.get("latitude")
    service.longitude = location.get("longitude")


async def create_service(*, session: AsyncSession, service_in: ServiceCreate) -> Service:
    """Register a service of an organisation."""
    service_id = await unused_id(session, Service, service_in.id)
    await _referenced_org(session, service_in.organisation_id, "organisation_id")
    values = service_in.model_dump(mode="json", exclude={"id", "organisation_id"})
    service = Service(
        id=service_id, organisation_id=service_in.organisation_id, row_version=1, **values
    )
    _derived_service_columns(service)
    session.add(service)
    await session.flush()
    return service


async def get_service(*, session: AsyncSession, service_id: uuid.UUID) -> Service:
    """Return a service or raise ServiceNotFound."""
    return await _existing(session, Service, service_id, ServiceNotFound)


async def update_service(
    *,
    session: AsyncSession,
    principal: Principal,
    service_id: uuid.UUID,
    service_in: ServiceUpdate,
    if_match: str | None,
) -> Service:
    """Change a service; providers may only open or close it to referrals."""
    service = await get_service(session=session, service_id=service_id)
    _require_edit(principal, service.organisation_id)
    changes = service_in.model_dump(mode="json", exclude_unset=True)
    refuse_nulls(service, changes)
    _require_fields(principal, set(changes), PROVIDER_SERVICE_FIELDS)
    check_if_match(service, if_match)
    country = changes.get("country", service.country)
    for area in changes.get("admin_areas", service.admin_areas):
        if not area.startswith(f"{country}-"):
            raise InvalidReference(
                Message(
                    "Admin area '{area}' is not in country {country}; fix one.",
                    area=area,
                    country=country,
                )
            )
    for key, value in changes.items():
        setattr(service, key, value)
    _derived_service_columns(service)
    bump(service)
    await session.flush()
    return service


async def delete_service(
    *, session: AsyncSession, service_id: uuid.UUID, if_match: str | None
) -> None:
    """Remove a service and its dedicated focal points."""
    service = await get_service(session=session, service_id=service_id)
    check_if_match(service, if_match)
    await session.delete(service)
    await session.flush()


# Focal points


async def list_focal_points(
    *,
    session: AsyncSession,
    organisation_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[FocalPoint]:
    """Return a page of focal points, optionally of one organisation."""
    return await repository.focal_point_page(
        session, after=after, limit=limit, organisation_id=organisation_id
    )


async def get_focal_point(*, session: AsyncSession, focal_point_id: uuid.UUID) -> FocalPoint:
    """Return a focal point or raise FocalPointNotFound."""
    return await _existing(session, FocalPoint, focal_point_id, FocalPointNotFound)


async def _check_focal_references(
    session: AsyncSession,
    org_id: uuid.UUID,
    service_id: uuid.UUID | None,
    backup_id: uuid.UUID | None,
) -> None:
    if service_id is not None:
        service = await repository.get(session, Service, service_id)
        if service is None or service.organisation_id != org_id:
            raise InvalidReference(N_("'service_id' names no service of this organisation."))
    if backup_id is not None:
        backup = await repository.get(session, FocalPoint, backup_id)
        if backup is None or backup.organisation_id != org_id:
            raise InvalidReference(
                N_("'backup_focal_point_id' names no focal point of this organisation.")
            )


async def create_focal_point(
    *, session: AsyncSession, principal: Principal, focal_in: FocalPointCreate
) -> FocalPoint:
    """Name a focal point of an organisation (or of one of its services)."""
    await _referenced_org(session, focal_in.organisation_id, "organisation_id")
    _require_edit(principal, focal_in.organisation_id)
    focal_id = await unused_id(session, FocalPoint, focal_in.id)
    await _check_focal_references(
        session, focal_in.organisation_id, focal_in.service_id, focal_in.backup_focal_point_id
    )
    values = focal_in.model_dump(mode="json", exclude={"id", "organisation_id", "service_id"})
    values["backup_focal_point_id"] = focal_in.backup_focal_point_id
    focal_point = FocalPoint(
        id=focal_id,
        organisation_id=focal_in.organisation_id,
        service_id=focal_in.service_id,
        row_version=1,
        **values,
    )
    session.add(focal_point)
    await session.flush()
    return focal_point


async def update_focal_point(
    *,
    session: AsyncSession,
    principal: Principal,
    focal_point_id: uuid.UUID,
    focal_in: FocalPointUpdate,
    if_match: str | None,
) -> FocalPoint:
    """Change a focal point of the caller's organisation (admins: any)."""
    focal_point = await get_focal_point(session=session, focal_point_id=focal_point_id)
    _require_edit(principal, focal_point.organisation_id)
    check_if_match(focal_point, if_match)
    changes = focal_in.model_dump(mode="json", exclude_unset=True)
    refuse_nulls(focal_point, changes)
    if "backup_focal_point_id" in changes:
        changes["backup_focal_point_id"] = focal_in.backup_focal_point_id
        if focal_in.backup_focal_point_id == focal_point.id:
            raise InvalidReference(N_("A focal point cannot be its own backup; name another one."))
        await _check_focal_references(
            session, focal_point.organisation_id, None, focal_in.backup_focal_point_id
        )
    for key, value in changes.items():
        setattr(focal_point, key, value)
    bump(focal_point)
    await session.flush()
    return focal_point


async def delete_focal_point(
    *, session: AsyncSession, principal: Principal, focal_point_id: uuid.UUID, if_match: str | None
) -> None:
    """Remove a focal point of the caller's organisation (admins: any)."""
    focal_point = await get_focal_point(session=session, focal_point_id=focal_point_id)
    _require_edit(principal, focal_point.organisation_id)
    check_if_match(focal_point, if_match)
    await session.delete(focal_point)
    await session.flush()


# Agreements


def _overlaps(
    a_from: datetime, a_until: datetime | None, b_from: datetime, b_until: datetime | None
) -> bool:
    return (b_until is None or a_from < b_until) and (a_until is None or b_from < a_until)


async def _refuse_overlaps(
    session: AsyncSession, scope: AgreementCreate | Agreement, valid_until: datetime | None
) -> None:
    purpose = scope.purpose.value if isinstance(scope, AgreementCreate) else scope.purpose
    candidates = await repository.agreements_for_provider(session, scope.provider_org_id, purpose)
    categories = {str(c) for c in scope.service_categories}
    for other in candidates:
        if other.id == scope.id:
            continue
        same_scope = (
            other.sender_org_id == scope.sender_org_id
            and other.programme == scope.programme
            and categories & set(other.service_categories)
        )
        window = _overlaps(scope.valid_from, valid_until, other.valid_from, other.valid_until)
        if same_scope and window:
            raise OverlappingAgreement(
                Message(
                    "Version {version} of agreement series {series_id} covers the same "
                    "sender, provider, programme, category and purpose during this period. End it "
                    "first (PATCH its valid_until) or let this version start after it ends.",
                    version=other.version,
                    series_id=other.series_id,
                ),
                conflicting_agreement_id=str(other.id),
            )


def emergency_categories(requested: list[DataCategory] | None, permitted: list[str]) -> list[str]:
    """Return the emergency set to store: the request if permitted, else the permitted default."""
    if requested is None:
        return [str(c) for c in DEFAULT_EMERGENCY_CATEGORIES if c in permitted]
    outside = sorted({str(c) for c in requested} - set(permitted))
    if outside:
        raise EmergencyCategoriesNotPermitted(
            Message(
                "emergency_categories may name only categories the agreement permits; "
                "not in permitted_categories: {categories}. Remove them, or permit them "
                "first. Nothing was stored.",
                categories=", ".join(outside),
            ),
            errors=[
                {
                    "loc": ["body", "emergency_categories"],
                    "msg": f"not permitted by the agreement: {', '.join(outside)}",
                    "type": "not_a_subset",
                }
            ],
        )
    return [str(c) for c in DataCategory if c in set(requested)]


async def create_agreement(*, session: AsyncSession, agreement_in: AgreementCreate) -> Agreement:
    """Register an agreement, or a new version of one, refusing overlapping versions."""
    permitted = [str(c) for c in agreement_in.permitted_categories]
    emergency = emergency_categories(agreement_in.emergency_categories, permitted)
    agreement_id = await unused_id(session, Agreement, agreement_in.id)
    await _referenced_org(session, agreement_in.provider_org_id, "provider_org_id")
    if agreement_in.sender_org_id is not None:
        await _referenced_org(session, agreement_in.sender_org_id, "sender_org_id")
    series_id, version = agreement_id, 1
    if agreement_in.series_id is not None:
        versions = await repository.agreement_series(session, agreement_in.series_id)
        if not versions:
            raise InvalidReference(
                N_("'series_id' names no agreement; omit it to start a new one.")
            )
        last = versions[-1]
        if (last.sender_org_id, last.provider_org_id) != (
            agreement_in.sender_org_id,
            agreement_in.provider_org_id,
        ):
            raise InvalidReference(
                N_("A new version must keep the sender and provider of its series.")
            )
        series_id, version = agreement_in.series_id, last.version + 1
    await pathways.check_parties(session, agreement_in)
    await programmes.check_agreement(session, agreement_in)
    await _refuse_overlaps(session, agreement_in, agreement_in.valid_until)
    values = agreement_in.model_dump(
        mode="json", exclude={"id", "series_id", "valid_from", "valid_until"}
    )
    values.update(
        sender_org_id=agreement_in.sender_org_id,
        provider_org_id=agreement_in.provider_org_id,
        emergency_categories=emergency,
    )
    agreement = Agreement(
        id=agreement_id,
        series_id=series_id,
        version=version,
        valid_from=agreement_in.valid_from,
        valid_until=agreement_in.valid_until,
        row_version=1,
        **values,
    )
    session.add(agreement)
    await session.flush()
    return agreement


async def get_agreement(*, session: AsyncSession, agreement_id: uuid.UUID) -> Agreement:
    """Return an agreement version or raise AgreementNotFound."""
    return await _existing(session, Agreement, agreement_id, AgreementNotFound)


async def update_agreement(
    *,
    session: AsyncSession,
    agreement_id: uuid.UUID,
    agreement_in: AgreementUpdate,
    if_match: str | None,
) -> Agreement:
    """End an agreement version or correct its programme, document hash or emergency set."""
    agreement = await get_agreement(session=session, agreement_id=agreement_id)
    check_if_match(agreement, if_match)
    changes = agreement_in.model_dump(exclude_unset=True)
    refuse_nulls(agreement, changes)
    if "emergency_categories" in changes:
        changes["emergency_categories"] = emergency_categories(
            agreement_in.emergency_categories, agreement.permitted_categories
        )
    until = changes.get("valid_until", agreement.valid_until)
    if until is not None and until <= agreement.valid_from:
        raise InvalidReference(N_("valid_until must be after the version's valid_from."))
    for key, value in changes.items():
        setattr(agreement, key, value)
    await programmes.check_agreement(session, agreement)
    if changes.keys() & {"valid_until", "programme"}:
        await _refuse_overlaps(session, agreement, until)
    bump(agreement)
    await session.flush()
    return agreement


async def _caller_party(
    session: AsyncSession, principal: Principal
) -> tuple[uuid.UUID, bool] | None:
    """Return the caller's organisation id and whether it is a host office (None if unknown)."""
    try:
        org_id = uuid.UUID(principal.org_id)
    except ValueError:
        return None
    org = await repository.get(session, Organisation, org_id)
    return (org_id, org.host_office) if org is not None else None


def is_party(agreement: Agreement, org_id: uuid.UUID, host_office: bool) -> bool:
    """Return True when the organisation is the agreement's provider or (one of) its senders."""
    if org_id in (agreement.provider_org_id, agreement.sender_org_id):
        return True
    return agreement.sender_org_id is None and host_office


async def visible_agreement(
    *, session: AsyncSession, principal: Principal, agreement_id: uuid.UUID
) -> Agreement:
    """Return the agreement to its parties and overseers; 404 to everybody else."""
    agreement = await get_agreement(session=session, agreement_id=agreement_id)
    if principal.has_any_role(*OVERSIGHT_ROLES):
        return agreement
    party = await _caller_party(session, principal)
    if party is None or not is_party(agreement, *party):
        raise AgreementNotFound
    return agreement


async def list_agreements(
    *,
    session: AsyncSession,
    principal: Principal,
    provider_org_id: uuid.UUID | None,
    sender_org_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Agreement]:
    """Return the agreement versions the caller is party to (overseers: all), by id."""
    party = None
    if not principal.has_any_role(*OVERSIGHT_ROLES):
        party = await _caller_party(session, principal)
        if party is None:
            return []
    return await repository.agreement_page(
        session,
        after=after,
        limit=limit,
        provider_org_id=provider_org_id,
        sender_org_id=sender_org_id,
        party=party,
    )


def agreements_in_force(
    agreements: list[Agreement], *, sender: Organisation, category: str, now: datetime
) -> list[Agreement]:
    """Return the versions in force for this sender and category, whatever their programme."""
    return [
        a
        for a in agreements
        if category in a.service_categories
        and a.valid_from <= now
        and (a.valid_until is None or now < a.valid_until)
        and (a.sender_org_id == sender.id or (a.sender_org_id is None and sender.host_office))
    ]


def agreement_in_force(
    agreements: list[Agreement],
    *,
    sender: Organisation,
    category: str,
    now: datetime,
    programme: str | None = None,
) -> Agreement | None:
    """Pick the version in force (of `programme` if named): a sender's own before an open one.

    Naming no programme when versions of several programmes apply is refused: which SOP
    governs the data, and which programme reports count the referral, must not be a guess.
    """
    matching = agreements_in_force(agreements, sender=sender, category=category, now=now)
    if programme is not None:
        matching = [a for a in matching if a.programme == programme]
    codes = sorted({a.programme or "" for a in matching})
    if len(codes) > 1:
        raise ProgrammeRequired(
            Message(
                "Your organisation holds agreements with this provider for this service under "
                "several programmes: {codes}. Name the one this referral belongs to in "
                "'programme'.",
                codes=", ".join(code or "(none)" for code in codes),
            ),
            programmes=[code or None for code in codes],
        )
    matching.sort(key=lambda a: (a.sender_org_id is not None, a.valid_from, a.version))
    return matching[-1] if matching else None


# Coordinators


def _coordination_score(
    org: Organisation, country: str, area: str | None, category: str | None
) -> int:
    """Rank how specifically `org` coordinates this place and category; -1 when it does not."""
    scope = org.coordination or {}
    if country not in scope.get("countries", []):
        return -1
    areas, categories = scope.get("admin_areas", []), scope.get("categories", [])
    area_country = [a for a in areas if a.startswith(f"{country}-")]
    if area_country and area not in area_country:
        return -1
    if categories and category not in categories:
        return -1
    return (2 if area_country else 0) + (1 if categories else 0)


async def resolve_coordinator(
    *, session: AsyncSession, country: str, admin_area: str | None, category: str | None
) -> Organisation:
    """Return the organisation that coordinates this area and category most specifically."""
    scored = [
        (_coordination_score(org, country, admin_area, category), org)
        for org in await repository.coordinators(session)
    ]
    eligible = [(score, org) for score, org in scored if score >= 0]
    if not eligible:
        where = f"{country}/{admin_area}" if admin_area else country
        raise NoCoordinator(
            Message(
                "No organisation coordinates {category} in {where}. Refer to a provider "
                "directly, or ask the directory steward to register a coordinator.",
                category=category or Message("services"),
                where=where,
            )
        )
    return max(eligible, key=lambda pair: pair[0])[1]
