"""Rows of the directory become response models here, and nowhere else."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from services.directory.models import (
    Agreement,
    CapacityPlan,
    ChangeRecord,
    CostShare,
    EngagementChange,
    Opportunity,
    Organisation,
    OrganisationEvent,
    OrganisationKey,
    PartnerContact,
    ServiceIntake,
    SituationReport,
)
from services.directory.partner_schemas import (
    CapacityPlanRead,
    ContactRead,
    EngagementChangeRead,
    FeedItem,
    IndicatorRead,
    IntakeRead,
    OpportunityRead,
    Point,
    SituationReportRead,
    Skill,
)
from services.directory.schemas import (
    Actor,
    AgreementRead,
    KeyRead,
    OrganisationEventRead,
    OrganisationRead,
)
from services.directory.service import sees_private_details
from services.directory.taxonomy import SCHEME, skill
from shared.auth import Principal
from shared.clock import utcnow
from shared.contracts.directory import CostShareRead
from shared.i18n import N_, Message, gettext
from shared.money import from_minor, to_minor

ReadT = TypeVar("ReadT", bound=BaseModel)


def to_read(row: Any, read: type[ReadT]) -> ReadT:
    """Shape a row whose columns are the response model's fields."""
    return read.model_validate(row, from_attributes=True)


def _in_minor_units(amount: Decimal | None, currency: str) -> Decimal | None:
    return None if amount is None else from_minor(to_minor(amount, currency), currency)


def cost_share_read(share: CostShare) -> CostShareRead:
    """Shape a rule: amounts with the currency's decimals, the percentage without trailing zeros."""
    percentage = share.percentage
    return CostShareRead(
        id=share.id,
        agreement_id=share.agreement_id,
        service_category=share.service_category,
        payer_org_id=share.payer_org_id,
        basis="fixed" if share.basis == "fixed" else "percentage",
        percentage=None if percentage is None else Decimal(format(percentage.normalize(), "f")),
        fixed_amount=_in_minor_units(share.fixed_amount, share.currency),
        cap=_in_minor_units(share.cap, share.currency),
        currency=share.currency,
        covers=share.covers,
        row_version=share.row_version,
        created_at=share.created_at,
        updated_at=share.updated_at,
    )


def agreement_read(agreement: Agreement, shares: Sequence[CostShare]) -> AgreementRead:
    """Shape an agreement version with its cost-share rules."""
    read = to_read(agreement, AgreementRead)
    read.cost_shares = [cost_share_read(share) for share in shares]
    return read


def organisation_read(principal: Principal, org: Organisation) -> OrganisationRead:
    """Return the organisation as this caller may see it: no webhook_url for other partners."""
    read = to_read(org, OrganisationRead)
    if not sees_private_details(principal, org.id):
        read.webhook_url = None
    return read


def key_read(key: OrganisationKey) -> KeyRead:
    """Shape a registered key with who added it."""
    added_by = None
    if key.added_by_client_id is not None:
        added_by = Actor(
            client_id=key.added_by_client_id,
            org_id=key.added_by_org_id or "",
            role=key.added_by_role or "",
        )
    values = {field: getattr(key, field) for field in KeyRead.model_fields if field != "added_by"}
    return KeyRead.model_validate({**values, "added_by": added_by})


def event_read(row: OrganisationEvent) -> OrganisationEventRead:
    """Shape an event of an organisation's keys with its actor."""
    actor = Actor(client_id=row.actor_client_id, org_id=row.actor_org_id, role=row.actor_role)
    return OrganisationEventRead.model_validate(
        {
            "id": row.id,
            "organisation_id": row.organisation_id,
            "type": row.type,
            "kid": row.kid,
            "thumbprint": row.thumbprint,
            "actor": actor,
            "by_admin": row.by_admin,
            "occurred_at": row.occurred_at,
        }
    )


# Partnership tools

ENGAGEMENT_STRATEGIES = {
    "information": N_("Keep informed: share updates and the services available."),
    "communication": N_("Consult regularly: exchange information and invite to coordination."),
    "close_management": N_("Manage closely: joint planning, agreed SOPs and regular reviews."),
}


def report_read(row: SituationReport, latest_version: int) -> SituationReportRead:
    """Shape a report version; `current` when valid now and the latest of its series."""
    now = utcnow()
    valid = row.valid_from <= now and (row.valid_until is None or now < row.valid_until)
    values = {
        field: getattr(row, field)
        for field in SituationReportRead.model_fields
        if field != "current"
    }
    return SituationReportRead.model_validate(
        {**values, "current": valid and row.version == latest_version}
    )


def intake_read(row: ServiceIntake) -> IntakeRead:
    """Shape a service's intake (`updated_at` null when never stated)."""
    return to_read(row, IntakeRead)


def feed_item(row: ChangeRecord, reports: dict[uuid.UUID, SituationReport], base: str) -> FeedItem:
    """Shape one change as a JSON Feed item (ids, codes and the report's own text only)."""
    report = reports.get(row.object_id)
    if row.object_type == "situation_report" and report is not None:
        url = f"{base}/situation-reports/{row.object_id}"
        title, text, tags = report.title, report.summary, [report.country, *report.topics]
    else:
        url = f"{base}/services/{row.object_id}/intake"
        status = str(row.details.get("to", ""))
        title = Message("Service intake changed: {status}", status=status).render()
        text = Message(
            "The provider changed the intake of service {service_id} from {old} to {new}.",
            service_id=str(row.object_id),
            old=str(row.details.get("from", "")),
            new=status,
        ).render()
        tags = [row.country, status]
    refex = {
        "event": row.action,
        "object_id": str(row.object_id),
        "organisation_id": str(row.organisation_id),
        "country": row.country,
    }
    return FeedItem.model_validate(
        {
            "id": str(row.id),
            "url": url,
            "title": title,
            "content_text": text,
            "date_published": row.occurred_at,
            "tags": tags,
            "_refex": refex,
        }
    )


def engagement_read(row: EngagementChange) -> EngagementChangeRead:
    """Shape one engagement change with what its level means."""
    return EngagementChangeRead(
        id=row.id,
        organisation_id=row.organisation_id,
        from_level=row.from_level,
        to_level=row.to_level,
        strategy=gettext(ENGAGEMENT_STRATEGIES.get(row.to_level, "")),
        reason=row.reason,
        planned_activities=row.planned_activities,
        changed_by_org_id=row.actor_org_id,
        changed_at=row.changed_at,
    )


def contact_read(row: PartnerContact) -> ContactRead:
    """Shape a logged contact."""
    return to_read(row, ContactRead)


def _progress(indicator: dict[str, Any]) -> float | None:
    current = indicator.get("current")
    if current is None:
        return None
    baseline, target = float(indicator["baseline"]), float(indicator["target"])
    return round((float(current) - baseline) / (target - baseline), 3)


def capacity_read(row: CapacityPlan) -> CapacityPlanRead:
    """Shape a capacity-building record with each indicator's progress."""
    indicators = [IndicatorRead(**item, progress=_progress(item)) for item in row.indicators]
    values = {f: getattr(row, f) for f in CapacityPlanRead.model_fields if f != "indicators"}
    return CapacityPlanRead.model_validate({**values, "indicators": indicators})


def opportunity_hsds(row: Opportunity) -> dict[str, Any]:
    """Map an opportunity to an HSDS 3 service with ISCO-08 taxonomy terms (a mapping)."""
    return {
        "id": str(row.id),
        "organization_id": str(row.organisation_id),
        "name": row.title.get("en") or next(iter(row.title.values())),
        "description": row.description.get("en", ""),
        "status": "active" if row.places_left > 0 else "inactive",
        "languages": [{"code": code} for code in row.languages],
        "attributes": [
            {"taxonomy_term": {"code": code, "taxonomy": SCHEME, "name": skill(code)["en"]}}
            for code in row.skills
        ],
        "service_areas": [{"extent_type": "geojson", "name": row.admin_area or row.country}],
    }


def opportunity_read(row: Opportunity) -> OpportunityRead:
    """Shape an opportunity with its skills' titles and its HSDS mapping."""
    location = None
    if row.latitude is not None and row.longitude is not None:
        location = Point(latitude=row.latitude, longitude=row.longitude)
    values = {
        f: getattr(row, f)
        for f in OpportunityRead.model_fields
        if f not in ("location", "skills", "hsds")
    }
    skills = [Skill.model_validate(skill(code)) for code in row.skills]
    return OpportunityRead.model_validate(
        {**values, "location": location, "skills": skills, "hsds": opportunity_hsds(row)}
    )
