"""Situation reports and service intake: what partners in a country of origin say has changed."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory import service as directory
from services.directory.changes import record_change
from services.directory.errors import (
    InvalidReference,
    NotYourOrganisation,
    ReportOutsideYourCountry,
    SituationReportNotFound,
)
from services.directory.models import ChangeRecord, Organisation, ServiceIntake, SituationReport
from services.directory.partner_schemas import IntakeUpdate, SituationReportCreate
from shared.auth import Principal
from shared.clock import utcnow
from shared.i18n import Message
from shared.ids import new_id
from shared.vocabulary import Role


async def visible_countries(session: AsyncSession, principal: Principal) -> set[str] | None:
    """Return the countries whose reports the caller sees (None: every country, for overseers).

    A partner sees its own country's reports and those of every country where it holds an
    agreement with a provider.
    """
    if principal.has_any_role(*directory.OVERSIGHT_ROLES):
        return None
    try:
        org = await repository.get(session, Organisation, uuid.UUID(principal.org_id))
    except ValueError:
        return set()
    if org is None:
        return set()
    return {org.country} | await repository.party_countries(session, org.id, org.host_office)


async def _next_version(
    session: AsyncSession, report_in: SituationReportCreate
) -> tuple[uuid.UUID | None, int]:
    if report_in.series_id is None:
        return None, 1
    versions = await repository.report_series(session, report_in.series_id)
    if not versions:
        raise InvalidReference(
            Message("'series_id' names no situation report; omit it to start a new report.")
        )
    last = versions[-1]
    if last.organisation_id != report_in.organisation_id or last.country != report_in.country:
        raise InvalidReference(
            Message("A new version must keep the organisation and country of its report.")
        )
    return last.series_id, last.version + 1


async def publish_report(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    report_in: SituationReportCreate,
) -> SituationReport:
    """Publish a situation report, or a new version of one, on the publisher's own country."""
    org = await directory.get_organisation(session=session, org_id=report_in.organisation_id)
    if not directory.may_edit_organisation(principal, org.id):
        raise NotYourOrganisation
    if org.country != report_in.country and not principal.has_any_role(Role.ADMIN):
        raise ReportOutsideYourCountry
    series_id, version = await _next_version(session, report_in)
    report_id = new_id()
    report = SituationReport(
        id=report_id,
        series_id=series_id or report_id,
        version=version,
        published_at=utcnow(),
        **report_in.model_dump(exclude={"series_id"}),
    )
    session.add(report)
    record_change(
        session,
        principal=principal,
        request_id=request_id,
        action="situation-report.published",
        object_type="situation_report",
        object_id=report.id,
        organisation_id=org.id,
        country=report.country,
        details={"series_id": str(report.series_id), "version": version, "topics": report.topics},
    )
    await session.flush()
    return report


async def list_reports(
    *,
    session: AsyncSession,
    principal: Principal,
    country: str | None,
    topic: str | None,
    before: uuid.UUID | None,
    limit: int,
) -> tuple[list[SituationReport], dict[uuid.UUID, int]]:
    """Return the reports the caller may see, newest first, with each series' latest version."""
    countries = await visible_countries(session, principal)
    rows = await repository.situation_page(
        session, countries=countries, country=country, topic=topic, before=before, limit=limit
    )
    latest = await repository.latest_versions(session, list({row.series_id for row in rows}))
    return rows, latest


async def get_report(
    *, session: AsyncSession, principal: Principal, report_id: uuid.UUID
) -> tuple[SituationReport, int]:
    """Return one report the caller may see and its series' latest version; 404 otherwise."""
    report = await repository.get(session, SituationReport, report_id)
    countries = await visible_countries(session, principal)
    if report is None or (countries is not None and report.country not in countries):
        raise SituationReportNotFound
    latest = await repository.latest_versions(session, [report.series_id])
    return report, latest[report.series_id]


async def get_intake(*, session: AsyncSession, service_id: uuid.UUID) -> ServiceIntake:
    """Return a service's stated intake; a service never stated is open."""
    await directory.get_service(session=session, service_id=service_id)
    stated = await repository.intake_of(session, service_id)
    return stated or ServiceIntake(
        service_id=service_id, status="open", note={}, waiting_days=None, places_left=None
    )


async def set_intake(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    service_id: uuid.UUID,
    intake_in: IntakeUpdate,
) -> ServiceIntake:
    """Record what the provider says about its service's intake now (its own services only)."""
    service = await directory.get_service(session=session, service_id=service_id)
    if not directory.may_edit_organisation(principal, service.organisation_id):
        raise NotYourOrganisation
    intake = await repository.intake_of(session, service_id)
    previous = intake.status if intake else "open"
    if intake is None:
        intake = ServiceIntake(service_id=service_id)
        session.add(intake)
    for key, value in intake_in.model_dump().items():
        setattr(intake, key, value)
    intake.updated_at = utcnow()
    record_change(
        session,
        principal=principal,
        request_id=request_id,
        action="service.intake-changed",
        object_type="service_intake",
        object_id=service_id,
        organisation_id=service.organisation_id,
        country=service.country,
        details={"from": previous, "to": intake_in.status},
    )
    await session.flush()
    return intake


async def feed(
    *, session: AsyncSession, principal: Principal, before: uuid.UUID | None, limit: int
) -> tuple[list[ChangeRecord], dict[uuid.UUID, SituationReport]]:
    """Return the changes the caller may follow, newest first, with the reports they name."""
    countries = await visible_countries(session, principal)
    rows = await repository.change_page(session, countries=countries, before=before, limit=limit)
    report_ids = [row.object_id for row in rows if row.object_type == "situation_report"]
    return rows, await repository.by_ids(session, SituationReport, report_ids)
