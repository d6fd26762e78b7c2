"""Demo directory: three origin countries, twenty organisations, sixty services, two
programmes, SOPs and keys.

Demo only. Everything is derived from fixed ids, so running it again changes nothing, except that
it repairs what the demo journey relies on when an admin changed it: the demo organisations'
coordinator links, their encryption keys (reactivated, or replaced when revoked) and whether the
demo services accept referrals. The demo
organisations' PRIVATE encryption keys are kept under var/demo/keys/<org_id>.jwk so the demo can
decrypt what it sends; real partners keep their private keys themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import costs, programmes, repository
from services.directory import service as directory
from services.directory.cost_schemas import CostShareCreate
from services.directory.models import (
    Agreement,
    CostShare,
    FocalPoint,
    Organisation,
    OrganisationKey,
    Service,
)
from services.directory.schemas import (
    AgreementCreate,
    FocalPointCreate,
    KeyCreate,
    OrganisationCreate,
    ProgrammeCreate,
    ServiceCreate,
)
from services.directory.settings import DirectorySettings
from shared import demo
from shared.auth import Principal
from shared.clock import utcnow
from shared.db import Database
from shared.vocabulary import Pathway, ServiceCategory

NAMESPACE = uuid.UUID("0192f000-0000-7000-8000-0000000d1e00")
STEWARD = Principal(
    client_id="demo-seed",
    org_id=str(demo.ADMIN_ORG),
    roles=frozenset({"admin"}),
    scopes=frozenset(),
    token_id="demo-seed",  # noqa: S106 (an id, not a secret)
    expires_at=0,
)
AGREEMENTS_FROM = datetime(2026, 1, 1, tzinfo=UTC)
AGREEMENTS_UNTIL = datetime(2028, 1, 1, tzinfo=UTC)
PROGRAMMES = (
    ProgrammeCreate(
        code=demo.EU_PROGRAMME,
        name={
            "en": "EU Reintegration Programme 2026",
            "fr": "Programme de réintégration de l'UE 2026",
        },
        donor="European Union",
        host_countries=["DE", "IT"],
        origin_countries=["IQ", "NG"],
        starts_at=AGREEMENTS_FROM,
        ends_at=AGREEMENTS_UNTIL,
    ),
    ProgrammeCreate(
        code=demo.SAHEL_PROGRAMME,
        name={"en": "Sahel Sustainable Return 2026", "fr": "Retour durable au Sahel 2026"},
        donor="Sahel Reintegration Trust Fund (demo)",
        host_countries=["DE", "IT"],
        origin_countries=["SN"],
        starts_at=AGREEMENTS_FROM,
        ends_at=AGREEMENTS_UNTIL,
    ),
)


def demo_id(name: str) -> uuid.UUID:
    """Return the stable id of a named demo object."""
    return uuid.uuid5(NAMESPACE, name)


@dataclass(frozen=True)
class Place:
    """A city where demo services are delivered."""

    country: str
    area: str
    city: str
    lat: float
    lon: float
    languages: tuple[str, ...]
    timezone: str


LAGOS = Place("NG", "NG-LA", "Lagos", 6.5244, 3.3792, ("en", "yo"), "Africa/Lagos")
BENIN_CITY = Place("NG", "NG-ED", "Benin City", 6.3350, 5.6037, ("en",), "Africa/Lagos")
DAKAR = Place("SN", "SN-DK", "Dakar", 14.7167, -17.4677, ("fr", "wo"), "Africa/Dakar")
THIES = Place("SN", "SN-TH", "Thiès", 14.7910, -16.9260, ("fr", "wo"), "Africa/Dakar")
BAGHDAD = Place("IQ", "IQ-BG", "Baghdad", 33.3152, 44.3661, ("ar",), "Asia/Baghdad")
ERBIL = Place("IQ", "IQ-AR", "Erbil", 36.1911, 44.0092, ("ar", "ku"), "Asia/Baghdad")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
LOCAL_HOURS: dict[str, dict[str, Any]] = {
    "Africa/Lagos": {
        "weekly_hours": {d: [["08:00", "16:00"]] for d in WEEKDAYS},
        "holidays": ["2026-10-01", "2026-12-25", "2026-12-26", "2027-01-01"],
    },
    "Africa/Dakar": {
        "weekly_hours": {d: [["08:30", "13:00"], ["14:30", "17:30"]] for d in WEEKDAYS},
        "holidays": ["2026-04-04", "2026-12-25", "2027-01-01"],
    },
    # Iraq's working week runs Sunday to Thursday.
    "Asia/Baghdad": {
        "weekly_hours": {d: [["08:00", "14:00"]] for d in ("sun", "mon", "tue", "wed", "thu")},
        "holidays": ["2026-07-14", "2026-10-03", "2027-01-01"],
    },
}


@dataclass(frozen=True)
class DemoOrg:
    """One demo organisation and what it offers."""

    id: uuid.UUID
    name: str
    stakeholder_type: str
    place: Place | None
    categories: tuple[str, ...] = ()
    engagement: str = "close_management"
    host_country: tuple[str, str] | None = None
    coordinates: str | None = None
    coordinator: uuid.UUID | None = None
    local_names: tuple[tuple[str, str], ...] = ()  # (language, name) besides the English one


SN_COORDINATOR = demo_id("org:sn-coordination")
C = ServiceCategory
ORGANISATIONS: tuple[DemoOrg, ...] = (
    DemoOrg(
        demo.HOST_OFFICE_ORG,
        "Return Counselling Office Berlin",
        "national_authority",
        None,
        host_country=("DE", "DE-BE"),
    ),
    DemoOrg(
        demo.SECOND_HOST_OFFICE_ORG,
        "Return Desk Rome",
        "local_authority",
        None,
        host_country=("IT", "IT-RM"),
    ),
    DemoOrg(
        demo.AUDITOR_ORG,
        "Data Protection Monitoring Office",
        "national_authority",
        None,
        engagement="information",
        host_country=("DE", "DE-BE"),
    ),
    DemoOrg(
        demo.ADMIN_ORG,
        "Referral Directory Stewardship",
        "international_organisation",
        None,
        engagement="information",
        host_country=("DE", "DE-BE"),
    ),
    DemoOrg(
        demo.PLATFORM_ORG,
        "Referral Exchange Platform",
        "international_organisation",
        None,
        engagement="information",
        host_country=("DE", "DE-BE"),
    ),
    DemoOrg(
        demo.COORDINATOR_ORG,
        "Nigeria Reintegration Case Management Committee",
        "national_authority",
        LAGOS,
        (C.RECEPTION, C.CASH_IN_KIND),
        coordinates="NG",
    ),
    DemoOrg(
        SN_COORDINATOR,
        "Senegal Returnee Coordination Unit",
        "national_authority",
        DAKAR,
        (C.RECEPTION, C.CASH_IN_KIND),
        coordinates="SN",
        local_names=(("fr", "Cellule de coordination des migrants de retour du Sénégal"),),
    ),
    DemoOrg(
        demo.HEALTH_PROVIDER_ORG,
        "Lagos Returnee Clinic",
        "private_sector",
        LAGOS,
        (C.HEALTH,),
        engagement="information",  # the partnership seed walks it up to close management
        coordinator=demo.COORDINATOR_ORG,
    ),
    DemoOrg(
        demo.MENTAL_HEALTH_ORG,
        "MindBridge Psychosocial Support",
        "ngo",
        LAGOS,
        (C.MENTAL_HEALTH_PSYCHOSOCIAL,),
        coordinator=demo.COORDINATOR_ORG,
    ),
    DemoOrg(
        demo_id("org:edo-skills"),
        "Benin City Skills Academy",
        "academia",
        BENIN_CITY,
        (C.TVET, C.EDUCATION),
        coordinator=demo.COORDINATOR_ORG,
    ),
    DemoOrg(
        demo_id("org:edo-returnees"),
        "Edo Returnees Association",
        "migrant_association",
        BENIN_CITY,
        (C.RECEPTION, C.FAMILY_TRACING),
        "communication",
        coordinator=demo.COORDINATOR_ORG,
    ),
    DemoOrg(
        demo_id("org:ng-diaspora"),
        "Nigerian Diaspora Enterprise Fund",
        "diaspora_organisation",
        LAGOS,
        (C.BUSINESS_DEVELOPMENT, C.EMPLOYMENT),
        coordinator=demo.COORDINATOR_ORG,
    ),
    DemoOrg(
        demo_id("org:lagos-child"),
        "Lagos State Child Protection Directorate",
        "local_authority",
        LAGOS,
        (C.CHILD_PROTECTION, C.HOUSING),
        coordinator=demo.COORDINATOR_ORG,
    ),
    DemoOrg(
        demo_id("org:dakar-tvet"),
        "Dakar Vocational Training Centre",
        "academia",
        DAKAR,
        (C.TVET, C.EMPLOYMENT, C.EDUCATION),
        coordinator=SN_COORDINATOR,
        local_names=(("fr", "Centre de formation professionnelle de Dakar"),),
    ),
    DemoOrg(
        demo_id("org:sn-returnees"),
        "Association of Returned Migrants of Senegal",
        "migrant_association",
        THIES,
        (C.RECEPTION, C.BUSINESS_DEVELOPMENT, C.HOUSING),
        "communication",
        coordinator=SN_COORDINATOR,
        local_names=(("fr", "Association des migrants de retour du Sénégal"),),
    ),
    DemoOrg(
        demo_id("org:thies-social"),
        "Thiès Municipal Social Services",
        "local_authority",
        THIES,
        (C.HEALTH, C.MENTAL_HEALTH_PSYCHOSOCIAL, C.CHILD_PROTECTION),
        coordinator=SN_COORDINATOR,
        local_names=(("fr", "Services sociaux municipaux de Thiès"),),
    ),
    DemoOrg(
        demo_id("org:erbil-legal"),
        "Erbil Legal Aid Network",
        "ngo",
        ERBIL,
        (C.LEGAL, C.FAMILY_TRACING, C.HOUSING),
        local_names=(("ar", "شبكة المساعدة القانونية في أربيل"),),
    ),
    DemoOrg(
        demo_id("org:baghdad-tracing"),
        "Baghdad Family Tracing Office",
        "international_organisation",
        BAGHDAD,
        (C.FAMILY_TRACING, C.LEGAL, C.CASH_IN_KIND),
        local_names=(("ar", "مكتب البحث عن الأسر في بغداد"),),
    ),
    DemoOrg(
        demo_id("org:iq-diaspora"),
        "Iraqi Diaspora Business Network",
        "diaspora_organisation",
        BAGHDAD,
        (C.BUSINESS_DEVELOPMENT, C.EMPLOYMENT, C.TVET),
        local_names=(("ar", "شبكة أعمال المغتربين العراقيين"),),
    ),
    DemoOrg(
        demo_id("org:kurdistan-housing"),
        "Kurdistan Housing Cooperative",
        "private_sector",
        ERBIL,
        (C.HOUSING, C.CASH_IN_KIND, C.HEALTH, C.MENTAL_HEALTH_PSYCHOSOCIAL),
        local_names=(("ar", "جمعية كردستان التعاونية للإسكان"),),
    ),
)

SERVICE_NAMES: dict[str, tuple[str, str]] = {
    "health": ("Primary health care for returnees", "Consultations, medication and referrals."),
    "mental_health_psychosocial": (
        "Psychosocial counselling",
        "Individual and group counselling, trauma-informed support.",
    ),
    "housing": ("Temporary housing support", "Rent support and shelter for the first months."),
    "employment": ("Job placement service", "CV coaching, job matching and employer contacts."),
    "tvet": ("Vocational training", "Certified courses in trades, tailoring and IT."),
    "business_development": ("Business start-up coaching", "Business plans, grants, mentoring."),
    "education": ("School re-enrolment", "Help returning children and adults back to school."),
    "legal": ("Legal aid for returnees", "Documents, civil registration and property claims."),
    "cash_in_kind": ("Reintegration cash and in-kind support", "Cash, tools and start-up kits."),
    "reception": ("Reception and orientation", "Arrival assistance and first orientation."),
    "family_tracing": ("Family tracing and reunification", "Restoring family links."),
    "child_protection": ("Child protection case management", "Support for returning children."),
}
# French as Senegalese providers write it; names read « <service> — <ville> ».
SERVICE_NAMES_FR: dict[str, tuple[str, str]] = {
    "health": (
        "Centre de santé communautaire",
        "Consultations, médicaments et orientation vers les spécialistes.",
    ),
    "mental_health_psychosocial": (
        "Soutien psychosocial",
        "Écoute individuelle et en groupe, accompagnement adapté aux traumatismes.",
    ),
    "housing": (
        "Aide au logement temporaire",
        "Aide au loyer et hébergement pendant les premiers mois.",
    ),
    "employment": (
        "Service d'insertion professionnelle",
        "Accompagnement CV, mise en relation avec les offres d'emploi et les employeurs.",
    ),
    "tvet": (
        "Formation professionnelle",
        "Formations certifiantes aux métiers : couture, mécanique, informatique.",
    ),
    "business_development": (
        "Accompagnement à la création d'entreprise",
        "Plan d'affaires, subventions de démarrage, mentorat.",
    ),
    "education": (
        "Réinscription scolaire",
        "Aide aux enfants et aux adultes de retour pour reprendre l'école.",
    ),
    "legal": ("Aide juridique", "Papiers d'identité, état civil et litiges fonciers."),
    "cash_in_kind": (
        "Aide à la réintégration en espèces et en nature",
        "Espèces, outils et kits de démarrage.",
    ),
    "reception": ("Accueil et orientation", "Assistance à l'arrivée et première orientation."),
    "family_tracing": (
        "Recherche familiale et regroupement",
        "Rétablissement des liens familiaux.",
    ),
    "child_protection": (
        "Protection de l'enfance et suivi de cas",
        "Accompagnement des enfants de retour et de leur famille.",
    ),
}
# Wolof only for common phrases, on each organisation's main service (wording to be confirmed
# with the Senegalese partners).
SERVICE_NAMES_WO: dict[str, str] = {"health": "Wér-gi-yaram", "reception": "Dalal ak jàmm"}
SERVICE_NAMES_AR: dict[str, tuple[str, str]] = {
    "health": ("الرعاية الصحية الأولية للعائدين", "استشارات وأدوية وإحالات."),
    "mental_health_psychosocial": (
        "الإرشاد النفسي والاجتماعي",
        "إرشاد فردي وجماعي ودعم يراعي الصدمات.",
    ),
    "housing": ("دعم السكن المؤقت", "دعم الإيجار والمأوى في الأشهر الأولى."),
    "employment": ("خدمة التوظيف", "إعداد السيرة الذاتية والمطابقة مع فرص العمل وأصحاب العمل."),
    "tvet": ("التدريب المهني", "دورات معتمدة في الحرف والخياطة وتقنية المعلومات."),
    "business_development": (
        "التدريب على تأسيس المشاريع",
        "خطط العمل والمنح والإرشاد.",
    ),
    "education": (
        "إعادة التسجيل في المدارس",
        "مساعدة الأطفال والبالغين العائدين على العودة إلى الدراسة.",
    ),
    "legal": ("المساعدة القانونية للعائدين", "الوثائق والسجل المدني ومطالبات الملكية."),
    "cash_in_kind": ("الدعم النقدي والعيني لإعادة الإدماج", "نقد وأدوات وحقائب بدء النشاط."),
    "reception": ("الاستقبال والتوجيه", "المساعدة عند الوصول والتوجيه الأولي."),
    "family_tracing": ("البحث عن الأسر ولمّ الشمل", "إعادة الروابط العائلية."),
    "child_protection": ("إدارة حالات حماية الطفل", "دعم الأطفال العائدين."),
}
CITY_NAMES: dict[str, dict[str, str]] = {
    "Baghdad": {"ar": "بغداد"},
    "Erbil": {"ar": "أربيل"},
}
SUFFIXES = {
    "en": ("", " (mobile team)", " (walk-in)", " (outreach)"),
    "fr": ("", " (équipe mobile)", " (sans rendez-vous)", " (proximité)"),
    "ar": ("", " (فريق متنقل)", " (دون موعد)", " (التواصل الميداني)"),
}
PERMITTED: dict[str, list[str]] = {
    "health": ["identity.basic", "contact", "return.travel", "health.physical"],
    "mental_health_psychosocial": ["identity.basic", "contact", "health.mental", "vulnerability"],
    "housing": ["identity.basic", "contact", "household", "return.travel"],
    "employment": ["identity.basic", "contact", "skills"],
    "tvet": ["identity.basic", "contact", "skills"],
    "business_development": ["identity.basic", "contact", "skills", "plan"],
    "education": ["identity.basic", "contact", "skills", "household"],
    "legal": ["identity.basic", "identity.documents", "contact", "protection"],
    "cash_in_kind": ["identity.basic", "contact", "household", "plan"],
    "reception": ["identity.basic", "contact", "return.travel", "needs.assessment"],
    "family_tracing": ["identity.basic", "contact", "household", "protection"],
    "child_protection": ["identity.basic", "contact", "household", "vulnerability", "protection"],
}
SERVICES_PER_ORIGIN_ORG = 4  # 15 origin organisations x 4 = 60 services


def _organisation_in(org: DemoOrg) -> OrganisationCreate:
    country, area = org.host_country or (org.place.country, org.place.area)  # type: ignore[union-attr]
    languages = list(org.place.languages) if org.place else ["de", "en"]
    coordination = {"countries": [org.coordinates]} if org.coordinates else None
    slug = org.name.lower().replace(" ", "-").replace("è", "e")[:40]
    return OrganisationCreate.model_validate(
        {
            "id": str(org.id),
            "name": {"en": org.name, **dict(org.local_names)},
            "description": {"en": f"{org.name} (demo organisation)."},
            "stakeholder_type": org.stakeholder_type,
            "engagement_level": org.engagement,
            "host_office": org.id in (demo.HOST_OFFICE_ORG, demo.SECOND_HOST_OFFICE_ORG),
            "country": country,
            "admin_areas": [area],
            "languages": languages,
            "website": f"https://{slug}.example.org",
            # No webhook: demo partners poll; a partner registers its own receiver's URL.
            "webhook_url": None,
            "coordination": coordination,
            "coordinator_org_id": str(org.coordinator) if org.coordinator else None,
        }
    )


def _service_plan(org: DemoOrg) -> list[tuple[uuid.UUID, str, int]]:
    """Return (id, category, n) for an origin organisation's services."""
    plan = []
    for n in range(SERVICES_PER_ORIGIN_ORG):
        category = str(org.categories[n % len(org.categories)])
        service_id = demo_id(f"service:{org.id}:{n}")
        if org.id == demo.HEALTH_PROVIDER_ORG and n == 0:
            service_id = demo.DEMO_HEALTH_SERVICE
        if org.id == demo.MENTAL_HEALTH_ORG and n == 0:
            service_id = demo.DEMO_MENTAL_HEALTH_SERVICE
        plan.append((service_id, category, n))
    return plan


def _service_in(org: DemoOrg, service_id: uuid.UUID, category: str, n: int) -> ServiceCreate:
    assert org.place is not None
    name, description = _service_texts(org.place, category, n)
    offset = 0.01 * (n + 1) + (org.id.int % 97) * 0.0007  # spread services around the city
    return ServiceCreate.model_validate(
        {
            "id": str(service_id),
            "organisation_id": str(org.id),
            "category": category,
            "name": name,
            "description": description,
            "eligibility": "Returnees within 12 months of return.",
            "fees": "Free of charge for referred returnees.",
            "languages": list(org.place.languages),
            "capacity": 20 + 5 * n,
            "accepting_referrals": n != 3,
            "country": org.place.country,
            "admin_areas": [org.place.area],
            "location": {
                "name": f"{org.name}, {org.place.city}",
                "latitude": round(org.place.lat + offset, 5),
                "longitude": round(org.place.lon + offset, 5),
                "address": {"city": org.place.city, "country": org.place.country},
            },
        }
    )


def _service_texts(place: Place, category: str, n: int) -> tuple[dict[str, str], dict[str, str]]:
    """Name and description in English and, as local partners write them, French or Arabic."""
    title, description = SERVICE_NAMES[category]
    names = {"en": f"{title} {place.city}{SUFFIXES['en'][n]}"}
    descriptions = {"en": description}
    local = {"fr": SERVICE_NAMES_FR, "ar": SERVICE_NAMES_AR}
    for language in place.languages:
        if language in local:
            title, description = local[language][category]
            city = CITY_NAMES.get(place.city, {}).get(language, place.city)
            names[language] = f"{title} — {city}{SUFFIXES[language][n]}"
            descriptions[language] = description
    if "wo" in place.languages and category in SERVICE_NAMES_WO and n == 0:
        names["wo"] = f"{SERVICE_NAMES_WO[category]} — {place.city}"
    return names, descriptions


def _schedule(zone: str) -> dict[str, Any]:
    return {"timezone": zone, **LOCAL_HOURS[zone]}


def _focal_points(org: DemoOrg) -> list[FocalPointCreate]:
    """The organisation's duty desk; the demo health service also gets its own referral desk."""
    assert org.place is not None
    desk_id = demo_id(f"focal:{org.id}")
    if org.id == demo.HEALTH_PROVIDER_ORG:
        desk_id = demo.DEMO_HEALTH_BACKUP_FOCAL_POINT
    desk = {
        "id": str(desk_id),
        "organisation_id": str(org.id),
        "name": f"{org.name} duty desk",
        "role": "Referral focal point",
        "contact_channels": [
            {"type": "email", "value": f"referrals@{str(org.id)[-6:]}.example.org"}
        ],
        "schedule": _schedule(org.place.timezone),
        "response_time_hours": 16,
        "first_contact_categories": ["identity.basic", "contact"],
    }
    points = [FocalPointCreate.model_validate(desk)]
    if org.id == demo.HEALTH_PROVIDER_ORG:
        points.append(
            FocalPointCreate.model_validate(
                {
                    **desk,
                    "id": str(demo.DEMO_HEALTH_FOCAL_POINT),
                    "service_id": str(demo.DEMO_HEALTH_SERVICE),
                    "name": "Clinic referral desk",
                    "role": "Returnee health coordinator",
                    "contact_channels": [{"type": "phone", "value": "+234 1 555 0100"}],
                    "response_time_hours": 8,
                    "backup_focal_point_id": str(demo.DEMO_HEALTH_BACKUP_FOCAL_POINT),
                    "first_contact_categories": [
                        "identity.basic",
                        "contact",
                        "health.physical",
                        "health.mental",
                    ],
                }
            )
        )
    return points


def _agreement(
    name: str,
    sender: uuid.UUID | None,
    provider: uuid.UUID,
    categories: list[str],
    permitted: list[str],
    *,
    override: bool = False,
    programme: str = demo.EU_PROGRAMME,
    pathway: Pathway = Pathway.INTERNATIONAL,
) -> AgreementCreate:
    return AgreementCreate.model_validate(
        {
            "id": str(demo_id(f"agreement:{name}")),
            "sender_org_id": str(sender) if sender else None,
            "provider_org_id": str(provider),
            "service_categories": categories,
            "permitted_categories": permitted,
            "purpose": "referral",
            "retention_days": 365,
            "emergency_override_allowed": override,
            "valid_from": AGREEMENTS_FROM.isoformat(),
            "valid_until": AGREEMENTS_UNTIL.isoformat(),
            "programme": programme,
            "pathway": str(pathway),
            "document_sha256": demo_id(f"document:{name}").hex * 2,
        }
    )


def _origin_agreements() -> list[AgreementCreate]:
    """Agreements between partners in Nigeria: the local and national pathways of the demo."""
    return [
        _agreement(
            "lagos-clinic-mindbridge",
            demo.HEALTH_PROVIDER_ORG,
            demo.MENTAL_HEALTH_ORG,
            ["mental_health_psychosocial"],
            PERMITTED["mental_health_psychosocial"],
            pathway=Pathway.LOCAL,
        ),
        _agreement(
            "lagos-clinic-edo-skills",
            demo.HEALTH_PROVIDER_ORG,
            demo_id("org:edo-skills"),
            ["tvet", "education"],
            ["identity.basic", "contact", "skills"],
            pathway=Pathway.NATIONAL,
        ),
        _agreement(
            "ng-committee-lagos-clinic",
            demo.COORDINATOR_ORG,
            demo.HEALTH_PROVIDER_ORG,
            ["health"],
            PERMITTED["health"],
            pathway=Pathway.NATIONAL,
        ),
    ]


def _agreements() -> list[AgreementCreate]:
    """Berlin's own SOPs with the Lagos clinic and NGO; any host office with everyone else;
    the Nigerian partners' own agreements with each other."""
    agreements = [
        *_origin_agreements(),
        _agreement(
            "berlin-lagos-clinic",
            demo.HOST_OFFICE_ORG,
            demo.HEALTH_PROVIDER_ORG,
            ["health"],
            PERMITTED["health"],
            override=True,
        ),
        _agreement(
            "berlin-mindbridge",
            demo.HOST_OFFICE_ORG,
            demo.MENTAL_HEALTH_ORG,
            ["mental_health_psychosocial"],
            PERMITTED["mental_health_psychosocial"],
            override=True,
        ),
    ]
    for org in ORGANISATIONS:
        if org.place is None or org.id in (demo.HEALTH_PROVIDER_ORG, demo.MENTAL_HEALTH_ORG):
            continue
        categories = sorted({str(c) for c in org.categories})
        permitted = sorted({p for c in categories for p in PERMITTED[c] if p != "protection"})
        if org.coordinates:  # open referrals: the coordinator triages with the essentials only
            categories = sorted(str(c) for c in ServiceCategory)
            permitted = PERMITTED["reception"]
        programme = demo.SAHEL_PROGRAMME if org.place.country == "SN" else demo.EU_PROGRAMME
        agreements.append(
            _agreement(
                f"host-offices-{org.id}", None, org.id, categories, permitted, programme=programme
            )
        )
    return agreements


BERLIN_LAGOS_AGREEMENT = demo_id("agreement:berlin-lagos-clinic")


def _cost_shares() -> list[CostShareCreate]:
    """Health costs under Berlin's SOP with the Lagos clinic: the clinic waives a fixed fee,
    Berlin pays 70 % of the rest up to 400 EUR, the Nigerian committee co-finances 30 %."""
    terms: list[dict[str, Any]] = [
        {
            "payer_org_id": str(demo.HEALTH_PROVIDER_ORG),
            "basis": "fixed",
            "fixed_amount": "20.00",
            "covers": {
                "en": "Registration and first consultation, waived by the clinic",
                "fr": "Inscription et première consultation, offertes par la clinique",
            },
        },
        {
            "payer_org_id": str(demo.HOST_OFFICE_ORG),
            "basis": "percentage",
            "percentage": "70",
            "cap": "400.00",
            "covers": {
                "en": "Treatment and medication",
                "fr": "Traitement et médicaments",
            },
        },
        {
            "payer_org_id": str(demo.COORDINATOR_ORG),
            "basis": "percentage",
            "percentage": "30",
            "covers": {
                "en": "Co-financing by the reintegration committee",
                "fr": "Cofinancement par le comité de réintégration",
            },
        },
    ]
    return [
        CostShareCreate.model_validate(
            {
                "id": str(demo_id(f"cost-share:berlin-lagos-clinic:{n}")),
                "service_category": "health",
                "currency": "EUR",
                **term,
            }
        )
        for n, term in enumerate(terms)
    ]


async def _seed_cost_shares(session: AsyncSession) -> None:
    for share_in in _cost_shares():
        if await repository.get(session, CostShare, share_in.id) is None:  # type: ignore[arg-type]
            await costs.create_cost_share(
                session=session,
                principal=STEWARD,
                request_id=None,
                agreement_id=BERLIN_LAGOS_AGREEMENT,
                share_in=share_in,
            )


def _demo_kid(org_id: uuid.UUID, n: int) -> str:
    return f"demo-{str(org_id)[-12:]}-enc-{n}"


def _write_private_key(org_id: uuid.UUID, keys_dir: Path, kid: str) -> dict[str, Any]:
    parameters = {"kid": kid, "use": "enc", "alg": "ECDH-ES+A256KW"}
    private = ECKey.generate_key("P-256", parameters=parameters).as_dict(private=True)  # type: ignore[arg-type]
    path = keys_dir / f"{org_id}.jwk"
    keys_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():  # keep the replaced key: the demo may still hold payloads sealed to it
        previous = orjson.loads(path.read_bytes())
        path.rename(keys_dir / f"{org_id}.{previous.get('kid', 'previous')}.jwk")
    path.write_bytes(orjson.dumps(private))
    path.chmod(0o600)
    return dict(private)


def demo_private_key(org_id: uuid.UUID, keys_dir: Path) -> dict[str, Any]:
    """Load the organisation's demo private key, creating it on first use (demo only)."""
    path = keys_dir / f"{org_id}.jwk"
    if path.exists():
        key: dict[str, Any] = orjson.loads(path.read_bytes())
        return key
    return _write_private_key(org_id, keys_dir, _demo_kid(org_id, 1))


async def _seed_organisations(session: AsyncSession) -> None:
    for org in ORGANISATIONS:
        existing = await repository.get(session, Organisation, org.id)
        if existing is None:
            await directory.create_organisation(session=session, org_in=_organisation_in(org))
        else:
            _repair_links(existing, _organisation_in(org))


def _repair_links(existing: Organisation, seeded: OrganisationCreate) -> None:
    """Restore what the demo journey relies on: coordinator, coordination, host-office flag."""
    wanted = {
        "coordinator_org_id": seeded.coordinator_org_id,
        "coordination": seeded.model_dump(mode="json")["coordination"],
        "host_office": seeded.host_office,
    }
    if all(getattr(existing, key) == value for key, value in wanted.items()):
        return
    for key, value in wanted.items():
        setattr(existing, key, value)
    _bump(existing)


def _bump(row: Organisation | Service) -> None:
    """Move the ETag on, as an admin's change would, so cached copies are refreshed."""
    row.row_version += 1
    row.updated_at = utcnow()


def _usable(stored: OrganisationKey, private: dict[str, Any], org_id: uuid.UUID) -> bool:
    """Whether the registered key still encrypts to the demo private key on file."""
    return (
        stored.organisation_id == org_id
        and stored.status != "revoked"
        and (stored.valid_until is None or stored.valid_until > utcnow())
        and all(stored.jwk.get(m) == private.get(m) for m in ("kty", "crv", "x", "y"))
    )


async def _fresh_demo_key(
    session: AsyncSession, org_id: uuid.UUID, keys_dir: Path
) -> dict[str, Any]:
    """Replace the demo key on file with a new one under the next unused kid."""
    n = 2
    while await repository.key_by_kid(session, _demo_kid(org_id, n)) is not None:
        n += 1
    return _write_private_key(org_id, keys_dir, _demo_kid(org_id, n))


async def _seed_key(session: AsyncSession, org_id: uuid.UUID, keys_dir: Path) -> None:
    """Register the demo key, reactivate it when retired, replace it when revoked or lost."""
    private = demo_private_key(org_id, keys_dir)
    stored = await repository.key_by_kid(session, private["kid"])
    if stored is not None and not _usable(stored, private, org_id):
        private = await _fresh_demo_key(session, org_id, keys_dir)
        stored = None
    if stored is None:
        public = {k: v for k, v in private.items() if k != "d"}
        await directory.add_key(
            session=session,
            principal=_on_behalf_of(org_id),
            org_id=org_id,
            key_in=KeyCreate(jwk=public, valid_from=AGREEMENTS_FROM),
        )
    elif stored.status != "active":  # retired, or pending after an admin re-registered it
        stored.status = "active"
        stored.confirmed_at = stored.confirmed_at or utcnow()


def _on_behalf_of(org_id: uuid.UUID) -> Principal:
    """The seed acting as the organisation itself: the demo holds its private key (demo only).

    So its key is active at once, as when a partner registers its own key; a key the steward
    registered for it would wait for the organisation's confirmation.
    """
    return replace(STEWARD, org_id=str(org_id))


async def _seed_keys(session: AsyncSession, keys_dir: Path) -> None:
    for org in ORGANISATIONS:
        await _seed_key(session, org.id, keys_dir)


async def _seed_services(session: AsyncSession) -> None:
    for org in ORGANISATIONS:
        if org.place is None:
            continue
        for service_id, category, n in _service_plan(org):
            service_in = _service_in(org, service_id, category, n)
            existing = await repository.get(session, Service, service_id)
            if existing is None:
                await directory.create_service(session=session, service_in=service_in)
            elif existing.accepting_referrals != service_in.accepting_referrals:
                existing.accepting_referrals = service_in.accepting_referrals
                _bump(existing)
        for focal_in in _focal_points(org):
            if await repository.get(session, FocalPoint, focal_in.id) is None:  # type: ignore[arg-type]
                await directory.create_focal_point(
                    session=session, principal=STEWARD, focal_in=focal_in
                )


async def _seed_programmes(session: AsyncSession) -> None:
    for programme_in in PROGRAMMES:
        if await repository.programme_by_code(session, programme_in.code) is None:
            await programmes.create_programme(session=session, programme_in=programme_in)


async def _seed_agreements(session: AsyncSession) -> None:
    for agreement_in in _agreements():
        if await repository.get(session, Agreement, agreement_in.id) is None:  # type: ignore[arg-type]
            await directory.create_agreement(session=session, agreement_in=agreement_in)


async def seed_demo(settings: DirectorySettings) -> None:
    """Load the demo directory into the configured database; running it again changes nothing."""
    database = Database(settings.database_url, pool_size=1)
    try:
        async with database.sessionmaker() as session, session.begin():
            await _seed_organisations(session)
            await _seed_keys(session, demo.DEMO_KEYS_DIR)
            await _seed_services(session)
            await _seed_programmes(session)
            await _seed_agreements(session)
            await _seed_cost_shares(session)
        async with database.sessionmaker() as session, session.begin():
            # Imported here: the partnership seed builds on this module's demo ids.
            from services.directory.partner_seed import seed_partnership

            await seed_partnership(session)
    finally:
        await database.dispose()
