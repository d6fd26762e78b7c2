"""Demo partnership records: a situation report, intake, engagement history, jobs (demo only)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import engagement, opportunities, repository, situation
from services.directory.models import Organisation
from services.directory.partner_schemas import (
    CapacityPlanCreate,
    ContactCreate,
    EngagementChangeCreate,
    IntakeUpdate,
    OpportunityCreate,
    SituationReportCreate,
)
from services.directory.seed import STEWARD, demo_id
from shared import demo

SKILLS_ACADEMY = demo_id("org:edo-skills")
SKILLS_SERVICE = demo_id(f"service:{SKILLS_ACADEMY}:0")
REPORT_FROM = datetime(2026, 1, 1, tzinfo=UTC)
REPORT_UNTIL = datetime(2028, 1, 1, tzinfo=UTC)


def _report() -> SituationReportCreate:
    return SituationReportCreate(
        organisation_id=demo.COORDINATOR_ORG,
        country="NG",
        admin_area="NG-ED",
        topics=["labour_market", "service_disruptions"],
        language="en",
        title="Edo State: trades in demand, one clinic closed for repairs",
        summary=(
            "Workshops in Benin City hire motor mechanics and building electricians; the skills "
            "academy runs a new apprenticeship intake. Power cuts slow some services."
        ),
        valid_from=REPORT_FROM,
        valid_until=REPORT_UNTIL,
    )


def _opportunity(kind: str, title: dict[str, str], skills: list[str], **extra: Any) -> Any:
    return OpportunityCreate.model_validate(
        {
            "organisation_id": str(SKILLS_ACADEMY),
            "service_id": str(SKILLS_SERVICE),
            "kind": kind,
            "title": title,
            "country": "NG",
            "admin_area": "NG-ED",
            "location": {"latitude": 6.335, "longitude": 5.6037},
            "languages": ["en"],
            "skills": skills,
            **extra,
        }
    )


OPPORTUNITIES = (
    _opportunity(
        "apprenticeship",
        {"en": "Motor mechanic apprenticeship", "fr": "Apprentissage de mécanicien automobile"},
        ["7231"],
        places_left=6,
        starts_on="2027-02-01",
        ends_on="2027-12-20",
    ),
    _opportunity(
        "training",
        {"en": "Building electrician course", "fr": "Formation d'électricien du bâtiment"},
        ["7411", "7421"],
        places_left=12,
        starts_on="2027-01-15",
        ends_on="2027-06-30",
    ),
    _opportunity(
        "job",
        {"en": "Cook, hotel kitchen", "fr": "Cuisinier, cuisine d'hôtel"},
        ["5120"],
        places_left=2,
    ),
)


async def _seed_engagement(session: AsyncSession) -> None:
    clinic = demo.HEALTH_PROVIDER_ORG
    for level, reason in (
        ("communication", "First coordination meeting; the clinic shares its intake criteria."),
        ("close_management", "MoU signed; the clinic takes referrals from Berlin directly."),
    ):
        await engagement.change_engagement(
            session=session,
            principal=STEWARD,
            request_id=None,
            org_id=clinic,
            change_in=EngagementChangeCreate.model_validate(
                {
                    "level": level,
                    "reason": reason,
                    "planned_activities": [
                        {"kind": "other", "title": "Quarterly case review", "planned_on": None}
                    ],
                }
            ),
        )
    await engagement.log_contact(
        session=session,
        principal=STEWARD,
        request_id=None,
        org_id=clinic,
        contact_in=ContactCreate(
            kind="mou_signed",
            occurred_on=date(2026, 3, 2),
            counterpart_org_id=demo.HOST_OFFICE_ORG,
            summary="MoU on health referrals from Berlin signed by both directors.",
            decisions=["Referrals acknowledged within 8 business hours"],
        ),
    )
    await engagement.create_capacity_plan(
        session=session,
        principal=STEWARD,
        request_id=None,
        org_id=clinic,
        plan_in=CapacityPlanCreate.model_validate(
            {
                "assessed_on": "2026-02-10",
                "areas": ["case management", "mental health referral"],
                "gaps": ["no staff trained in psychological first aid"],
                "objectives": "Every intake nurse trained in psychological first aid by June.",
                "activities": [
                    {"kind": "training", "title": "Psychological first aid", "status": "done"},
                    {"kind": "equipment", "title": "Secure laptop for the referral desk"},
                ],
                "indicators": [
                    {
                        "name": "Referrals acknowledged within the SLA (%)",
                        "baseline": 40,
                        "target": 90,
                        "current": 65,
                    }
                ],
            }
        ),
    )


async def seed_partnership(session: AsyncSession) -> None:
    """Add the demo partnership records once; running it again changes nothing."""
    clinic = demo.HEALTH_PROVIDER_ORG
    if await repository.get(session, Organisation, clinic) is None:
        return
    if await repository.contact_page(session, org_id=clinic, before=None, limit=1):
        return
    await situation.publish_report(
        session=session, principal=STEWARD, request_id=None, report_in=_report()
    )
    await situation.set_intake(
        session=session,
        principal=STEWARD,
        request_id=None,
        service_id=demo.DEMO_MENTAL_HEALTH_SERVICE,
        intake_in=IntakeUpdate(status="limited", waiting_days=10, places_left=3),
    )
    for opportunity_in in OPPORTUNITIES:
        await opportunities.create_opportunity(
            session=session, principal=STEWARD, request_id=None, opportunity_in=opportunity_in
        )
    await _seed_engagement(session)
