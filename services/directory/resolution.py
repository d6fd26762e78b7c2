"""What a referral needs from the directory in one answer, and a service's availability."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import pathways, repository
from services.directory.errors import (
    InvalidReference,
    NoAgreement,
    NotYourOrganisation,
    OrganisationNotFound,
    ScheduleNeverOpens,
    ServiceNotFound,
)
from services.directory.models import FocalPoint, Organisation, Programme, Service
from services.directory.schemas import (
    AgreementParty,
    Availability,
    Jwks,
    Resolution,
    ResolvedAgreement,
    ResolvedFocalPoint,
    ResolvedProgramme,
    ResolvedService,
)
from services.directory.service import (
    OVERSIGHT_ROLES,
    agreement_in_force,
    get_service,
    sees_private_details,
)
from shared import business_hours
from shared.auth import Principal
from shared.business_hours import Schedule
from shared.clock import utcnow
from shared.i18n import N_, Message


def pick_focal_point(
    focal_points: list[FocalPoint], service: Service
) -> tuple[FocalPoint | None, FocalPoint | None]:
    """Return the service's own focal point (else its organisation's) and that one's backup."""
    by_id = {fp.id: fp for fp in focal_points}
    own = [fp for fp in focal_points if fp.service_id == service.id]
    general = [
        fp
        for fp in focal_points
        if fp.service_id is None and fp.organisation_id == service.organisation_id
    ]
    candidates = own or general
    chosen = candidates[0] if candidates else None
    backup = (
        by_id.get(chosen.backup_focal_point_id) if chosen and chosen.backup_focal_point_id else None
    )
    return chosen, backup


def _focal(focal_point: FocalPoint | None) -> ResolvedFocalPoint | None:
    if focal_point is None:
        return None
    return ResolvedFocalPoint(
        id=focal_point.id,
        schedule=Schedule.model_validate(focal_point.schedule),
        response_time_hours=focal_point.response_time_hours,
        first_contact_categories=focal_point.first_contact_categories,
        backup_focal_point_id=focal_point.backup_focal_point_id,
    )


def _party(principal: Principal, org: Organisation, keys: list[dict[str, Any]]) -> AgreementParty:
    webhook_url = org.webhook_url if sees_private_details(principal, org.id) else None
    return AgreementParty(
        organisation_id=org.id,
        webhook_url=webhook_url,
        keys=Jwks.from_stored(keys),
        country=org.country,
    )


def _programme(programme: Programme | None) -> ResolvedProgramme | None:
    if programme is None:
        return None
    return ResolvedProgramme(code=programme.code, donor=programme.donor)


async def resolve(
    *,
    session: AsyncSession,
    principal: Principal,
    sender_org_id: uuid.UUID,
    service_id: uuid.UUID,
    purpose: str,
    programme: str | None = None,
) -> Resolution:
    """Return the agreement in force, the service, both parties' keys and the focal points.

    A host office may ask only for itself as the sender: the agreement is then its own.
    """
    if not principal.has_any_role(*OVERSIGHT_ROLES) and principal.org_id != str(sender_org_id):
        raise NotYourOrganisation(
            N_(
                "You may look up agreements only with your own organisation as the sender: set "
                "sender_org to your organisation's id."
            )
        )
    service = await repository.get(session, Service, service_id)
    if service is None:
        raise ServiceNotFound
    provider_id = service.organisation_id
    orgs = await repository.organisations(session, [sender_org_id, provider_id])
    if sender_org_id not in orgs:
        raise OrganisationNotFound(
            N_("The sending organisation (sender_org) is not in the directory.")
        )
    now = utcnow()
    agreements = await repository.agreements_for_provider(session, provider_id, purpose)
    agreement = agreement_in_force(
        agreements,
        sender=orgs[sender_org_id],
        category=service.category,
        now=now,
        programme=programme,
    )
    if agreement is None:
        raise NoAgreement(
            Message(
                "No agreement in force lets organisation {sender_org_id} share data "
                "with provider organisation {provider_id} for service category "
                "'{category}' and purpose '{purpose}' within programme '{programme}'. Ask "
                "the directory steward to register or renew the SOP.",
                sender_org_id=sender_org_id,
                provider_id=provider_id,
                category=service.category,
                purpose=purpose,
                programme=programme,
            )
            if programme
            else Message(
                "No agreement in force lets organisation {sender_org_id} share data "
                "with provider organisation {provider_id} for service category "
                "'{category}' and purpose '{purpose}'. Ask the directory steward to "
                "register or renew the SOP.",
                sender_org_id=sender_org_id,
                provider_id=provider_id,
                category=service.category,
                purpose=purpose,
            ),
            sender_org_id=str(sender_org_id),
            provider_org_id=str(provider_id),
            service_category=service.category,
            purpose=purpose,
            programme=programme,
        )
    pathways.check_referral(agreement, sender=orgs[sender_org_id], service=service)
    registered = await repository.programme_by_code(session, agreement.programme or "")
    keys = await repository.valid_keys(session, list({sender_org_id, provider_id}), now)
    focal_points = await repository.focal_points_for_services(session, [service.id], [provider_id])
    chosen, backup = pick_focal_point(focal_points, service)
    return Resolution(
        agreement=ResolvedAgreement.model_validate(agreement, from_attributes=True),
        service=ResolvedService.model_validate(service, from_attributes=True),
        recipient=_party(principal, orgs[provider_id], keys[provider_id]),
        sender=_party(principal, orgs[sender_org_id], keys[sender_org_id]),
        programme=_programme(registered),
        focal_point=_focal(chosen),
        backup_focal_point=_focal(backup),
    )


async def availability(
    *, session: AsyncSession, service_id: uuid.UUID, at: datetime | None
) -> Availability:
    """Say whether the service's focal point is open at `at` (default now) and when it answers."""
    service = await get_service(session=session, service_id=service_id)
    focal_points = await repository.focal_points_for_services(
        session, [service.id], [service.organisation_id]
    )
    chosen, _backup = pick_focal_point(focal_points, service)
    if chosen is None:
        raise InvalidReference(
            N_(
                "This service has no focal point, so it has no opening hours; "
                "ask its organisation to name one."
            )
        )
    schedule = Schedule.model_validate(chosen.schedule)
    moment = at or utcnow()
    try:
        opens = schedule.next_opening(moment)
        due = schedule.add_business_hours(moment, chosen.response_time_hours)
    except business_hours.ScheduleNeverOpens as error:
        raise ScheduleNeverOpens(error.args[0]) from None
    return Availability(
        service_id=service.id,
        focal_point_id=chosen.id,
        at=moment,
        open=schedule.is_open(moment),
        next_opening=opens,
        timezone=schedule.timezone,
        response_time_hours=chosen.response_time_hours,
        response_due_at=due,
    )
