"""Request and response bodies of the partnership tools: situation, engagement, opportunities."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator

from services.directory.schemas import (
    STRICT,
    AdminArea,
    Country,
    EngagementLevel,
    Language,
    Names,
    OrganisationRead,
    Texts,
    _areas_in_country,
)
from services.directory.taxonomy import check_skill
from shared.i18n import Message

Topic = Literal["security", "labour_market", "service_disruptions", "access_to_documents"]
IntakeStatus = Literal["open", "limited", "temporarily_closed"]
ContactKind = Literal["meeting", "mou_signed", "review", "joint_decision", "call", "visit"]
ActivityKind = Literal["training", "equipment", "co_financed_course", "coaching", "other"]
ActivityStatus = Literal["planned", "in_progress", "done", "cancelled"]
OpportunityKind = Literal["job", "apprenticeship", "training"]
SkillCode = Annotated[str, AfterValidator(check_skill), Field(examples=["7231"])]
ShortText = Annotated[str, Field(min_length=1, max_length=500)]
Summary = Annotated[str, Field(min_length=1, max_length=4000)]
NO_PERSONAL_DATA = "About organisations and places only: never a returnee's name or case."


# Situation reports


class SituationReportCreate(BaseModel):
    """A report on an area; give `series_id` to publish a new version of an earlier one."""

    model_config = STRICT
    organisation_id: uuid.UUID = Field(description="The publishing organisation (yours).")
    series_id: uuid.UUID | None = Field(None, description="The report this version replaces.")
    country: Country
    admin_area: AdminArea | None = None
    topics: list[Topic] = Field(min_length=1, max_length=4, examples=[["labour_market"]])
    language: Language
    title: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        examples=["Lagos: construction hiring again after the rains"]
    )
    summary: Summary = Field(
        description=NO_PERSONAL_DATA,
        examples=["Sites in Ikeja and Lekki hire bricklayers and electricians; pay is stable."],
    )
    valid_from: AwareDatetime = Field(examples=["2026-12-01T00:00:00Z"])
    valid_until: AwareDatetime | None = Field(None, examples=["2027-03-01T00:00:00Z"])

    @model_validator(mode="after")
    def _consistent(self) -> SituationReportCreate:
        if self.admin_area:
            _areas_in_country(self.country, [self.admin_area])
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError(Message("valid_until must be after valid_from"))
        return self


class SituationReportRead(BaseModel):
    """One version of a situation report."""

    model_config = STRICT
    id: uuid.UUID
    series_id: uuid.UUID
    version: int
    organisation_id: uuid.UUID
    country: str
    admin_area: str | None
    topics: list[str]
    language: str
    title: str
    summary: str
    valid_from: datetime
    valid_until: datetime | None
    published_at: datetime
    current: bool = Field(description="True while valid now and not replaced by a later version.")


# Service intake


class IntakeUpdate(BaseModel):
    """What the provider says about taking people in now."""

    model_config = STRICT
    status: IntakeStatus = Field(examples=["limited"])
    waiting_days: int | None = Field(None, ge=0, le=3650, examples=[10])
    places_left: int | None = Field(None, ge=0, le=1_000_000, examples=[4])
    reopens_on: date | None = Field(None, examples=["2027-01-15"])
    note: Texts = Field(default_factory=dict, examples=[{"en": "Generator repairs until mid-Jan."}])

    @model_validator(mode="after")
    def _reopening_only_when_closed(self) -> IntakeUpdate:
        if self.reopens_on is not None and self.status != "temporarily_closed":
            raise ValueError(Message("reopens_on is for a temporarily_closed service only"))
        return self


class IntakeRead(BaseModel):
    """A service's intake as its provider last stated it (`open` when never stated)."""

    model_config = STRICT
    service_id: uuid.UUID
    status: IntakeStatus
    waiting_days: int | None
    places_left: int | None
    reopens_on: date | None
    note: dict[str, str]
    updated_at: datetime | None


# Feed (JSON Feed 1.1, https://www.jsonfeed.org/version/1.1/)


class FeedItem(BaseModel):
    """One change: a situation report published or a service's intake changed."""

    id: str
    url: str
    title: str
    content_text: str
    date_published: datetime
    tags: list[str]
    refex: dict[str, str] = Field(
        alias="_refex",
        description="The refex event (`situation-report.published`, `service.intake-changed`) "
        "and the ids it concerns.",
    )


class Feed(BaseModel):
    """What changed, newest first, as a JSON Feed 1.1 document."""

    version: str = Field(examples=["https://jsonfeed.org/version/1.1"])
    title: str
    feed_url: str
    next_url: str | None = None
    items: list[FeedItem]


# Engagement


class PlannedActivity(BaseModel):
    """Something planned with the organisation at this engagement level."""

    model_config = STRICT
    kind: ActivityKind = Field(examples=["training"])
    title: ShortText = Field(examples=["Joint case conference every quarter"])
    planned_on: date | None = Field(None, examples=["2027-02-01"])


class EngagementChangeCreate(BaseModel):
    """A new engagement level for an organisation, why, and what follows."""

    model_config = STRICT
    level: EngagementLevel = Field(examples=["close_management"])
    reason: Summary = Field(examples=["MoU signed; the clinic now takes referrals directly."])
    planned_activities: list[PlannedActivity] = Field(default_factory=list, max_length=50)


class EngagementChangeRead(BaseModel):
    """One step of an organisation's engagement history."""

    model_config = STRICT
    id: uuid.UUID
    organisation_id: uuid.UUID
    from_level: str | None
    to_level: str
    strategy: str = Field(description="What this level means for how partners work with it.")
    reason: str | None
    planned_activities: list[dict[str, Any]]
    changed_by_org_id: str
    changed_at: datetime


class ContactCreate(BaseModel):
    """A contact or joint decision with the organisation."""

    model_config = STRICT
    kind: ContactKind = Field(examples=["mou_signed"])
    occurred_on: date = Field(examples=["2026-11-20"])
    counterpart_org_id: uuid.UUID | None = Field(None, description="The other organisation.")
    summary: Summary = Field(description=NO_PERSONAL_DATA, examples=["MoU on health referrals."])
    decisions: list[ShortText] = Field(default_factory=list, max_length=50)


class ContactRead(BaseModel):
    """A logged contact or joint decision."""

    model_config = STRICT
    id: uuid.UUID
    organisation_id: uuid.UUID
    kind: str
    occurred_on: date
    counterpart_org_id: uuid.UUID | None
    summary: str
    decisions: list[str]
    recorded_by_org_id: str
    recorded_at: datetime


class CapacityActivity(BaseModel):
    """A capacity-building activity: a training, equipment, a co-financed course."""

    model_config = STRICT
    kind: ActivityKind = Field(examples=["training"])
    title: ShortText = Field(examples=["Psychological first aid for intake staff"])
    status: ActivityStatus = Field("planned", examples=["done"])
    on: date | None = Field(None, examples=["2027-01-20"])


class Indicator(BaseModel):
    """A progress indicator: where it started, where it should get, where it is."""

    model_config = STRICT
    name: ShortText = Field(examples=["Referrals acknowledged within the SLA (%)"])
    baseline: float = Field(examples=[40])
    target: float = Field(examples=[90])
    current: float | None = Field(None, examples=[65])

    @model_validator(mode="after")
    def _target_differs(self) -> Indicator:
        if self.target == self.baseline:
            raise ValueError(Message("an indicator's target must differ from its baseline"))
        return self


class CapacityPlanCreate(BaseModel):
    """An assessment (areas, gaps) and the plan that answers it."""

    model_config = STRICT
    assessed_on: date = Field(examples=["2026-10-01"])
    areas: list[ShortText] = Field(min_length=1, max_length=30, examples=[["case management"]])
    gaps: list[ShortText] = Field(default_factory=list, max_length=30)
    objectives: Annotated[str, Field(max_length=4000)] = ""
    activities: list[CapacityActivity] = Field(default_factory=list, max_length=100)
    indicators: list[Indicator] = Field(default_factory=list, max_length=30)


class CapacityPlanUpdate(BaseModel):
    """Progress on a plan: its activities and indicators as they stand now."""

    model_config = STRICT
    gaps: list[ShortText] | None = Field(None, max_length=30)
    objectives: Annotated[str, Field(max_length=4000)] | None = None
    activities: list[CapacityActivity] | None = Field(None, max_length=100)
    indicators: list[Indicator] | None = Field(None, max_length=30)


class IndicatorRead(BaseModel):
    """An indicator with how far it has come from baseline to target."""

    name: str
    baseline: float
    target: float
    current: float | None
    progress: float | None = Field(description="0 at baseline, 1 at target; null when unmeasured.")


class CapacityPlanRead(BaseModel):
    """A capacity-building record."""

    model_config = STRICT
    id: uuid.UUID
    organisation_id: uuid.UUID
    assessed_on: date
    areas: list[str]
    gaps: list[str]
    objectives: str
    activities: list[dict[str, Any]]
    indicators: list[IndicatorRead]
    row_version: int
    created_at: datetime
    updated_at: datetime


class PartnerPage(BaseModel):
    """An organisation's partnership page: engagement, contacts, capacity, and where its SLA is."""

    organisation: OrganisationRead
    engagement: list[EngagementChangeRead] = Field(description="The latest changes first.")
    contacts: list[ContactRead] = Field(description="The latest contacts first.")
    capacity_plans: list[CapacityPlanRead]
    sla_performance_url: str = Field(
        description="The referral statistics of this organisation as a recipient (gateway path).",
        examples=["/api/v1/referrals/stats?recipient_org_id=0192f000-0000-7000-8000-000000000002"],
    )


# Opportunities and skills


class Skill(BaseModel):
    """An ISCO-08 unit group with its English and French titles."""

    code: str = Field(examples=["7231"])
    scheme: str = Field(examples=["ISCO-08"])
    en: str = Field(examples=["Motor vehicle mechanics and repairers"])
    fr: str = Field(examples=["Mécaniciens et réparateurs de véhicules à moteur"])


class Point(BaseModel):
    """A place as latitude and longitude (WGS 84)."""

    model_config = STRICT
    latitude: float = Field(ge=-90, le=90, examples=[6.6018])
    longitude: float = Field(ge=-180, le=180, examples=[3.3515])


class OpportunityFields(BaseModel):
    """What an employer or training provider publishes."""

    model_config = STRICT
    kind: OpportunityKind = Field(examples=["apprenticeship"])
    title: Names = Field(examples=[{"en": "Auto mechanic apprentice", "fr": "Apprenti mécanicien"}])
    description: Texts = Field(default_factory=dict)
    country: Country
    admin_area: AdminArea | None = None
    location: Point | None = None
    starts_on: date | None = Field(None, examples=["2027-01-10"])
    ends_on: date | None = Field(None, examples=["2027-07-10"])
    places_left: int = Field(ge=0, le=1_000_000, examples=[3])
    languages: list[Language] = Field(default_factory=list, max_length=20)
    skills: list[SkillCode] = Field(min_length=1, max_length=20, examples=[["7231"]])

    @model_validator(mode="after")
    def _consistent(self) -> OpportunityFields:
        if self.admin_area:
            _areas_in_country(self.country, [self.admin_area])
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError(Message("ends_on must not be before starts_on"))
        return self


class OpportunityCreate(OpportunityFields):
    """A new opportunity of your organisation, optionally delivered as one of its services."""

    organisation_id: uuid.UUID
    service_id: uuid.UUID | None = Field(
        None, description="The organisation's service to refer a returnee to for this."
    )


class OpportunityUpdate(BaseModel):
    """What changes as an opportunity fills up or moves."""

    model_config = STRICT
    places_left: int | None = Field(None, ge=0, le=1_000_000)
    starts_on: date | None = None
    ends_on: date | None = None
    description: Texts | None = None


class OpportunityRead(BaseModel):
    """A published opportunity."""

    model_config = STRICT
    id: uuid.UUID
    organisation_id: uuid.UUID
    service_id: uuid.UUID | None
    kind: str
    title: dict[str, str]
    description: dict[str, str]
    country: str
    admin_area: str | None
    location: Point | None
    starts_on: date | None
    ends_on: date | None
    places_left: int
    languages: list[str]
    skills: list[Skill]
    hsds: dict[str, Any] = Field(description="The opportunity as an HSDS 3 service (a mapping).")
    row_version: int
    created_at: datetime
    updated_at: datetime


class MatchRequest(BaseModel):
    """A skills profile as codes only (never personal data), and where the returnee will be."""

    model_config = STRICT
    skills: list[SkillCode] = Field(min_length=1, max_length=30, examples=[["7231", "7411"]])
    country: Country
    near: Point | None = None
    kinds: list[OpportunityKind] = Field(default_factory=list, max_length=3)
    language: Language | None = None
    limit: int = Field(20, ge=1, le=100)


class MatchHit(BaseModel):
    """An opportunity and why it ranks where it does."""

    opportunity: OpportunityRead
    fit: float = Field(description="0..1: how much of the required skills the profile covers.")
    matched_skills: list[str]
    distance_km: float | None
    refer_to_service_id: uuid.UUID | None = Field(
        description="Refer here (POST /api/v1/referrals); consent and the SOP apply as usual."
    )


class MatchResult(BaseModel):
    """Opportunities ranked by fit, then distance."""

    items: list[MatchHit]
