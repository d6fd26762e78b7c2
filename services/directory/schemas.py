"""Request and response bodies of the directory service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from services.directory.codes import check_admin_area, check_country, check_language
from shared.business_hours import Schedule
from shared.contracts.directory import DEFAULT_EMERGENCY_CATEGORIES as DEFAULT_EMERGENCY_CATEGORIES
from shared.contracts.directory import EXAMPLE_JWK as EXAMPLE_JWK
from shared.contracts.directory import AgreementParty as AgreementParty
from shared.contracts.directory import AgreementRead as AgreementRead
from shared.contracts.directory import Jwks as Jwks
from shared.contracts.directory import OrganisationRead as OrganisationRead
from shared.contracts.directory import Resolution as Resolution
from shared.contracts.directory import ResolvedAgreement as ResolvedAgreement
from shared.contracts.directory import ResolvedFocalPoint as ResolvedFocalPoint
from shared.contracts.directory import ResolvedProgramme as ResolvedProgramme
from shared.contracts.directory import ResolvedService as ResolvedService
from shared.contracts.directory import ServiceRead as ServiceRead
from shared.i18n import N_, Message
from shared.vocabulary import DataCategory, Pathway, Purpose, ServiceCategory

StakeholderType = Literal[
    "national_authority",
    "local_authority",
    "ngo",
    "private_sector",
    "diaspora_organisation",
    "migrant_association",
    "international_organisation",
    "academia",
]
EngagementLevel = Literal["information", "communication", "close_management"]
KeyStatus = Literal["pending", "active", "retired", "revoked"]

Country = Annotated[str, AfterValidator(check_country), Field(examples=["NG"])]
AdminArea = Annotated[str, AfterValidator(check_admin_area), Field(examples=["NG-LA"])]
Language = Annotated[str, AfterValidator(check_language), Field(examples=["en"])]
LanguageKey = Annotated[str, AfterValidator(check_language)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
ProgrammeCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=64,
        pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$",
        examples=["eu-reintegration-2026"],
        description="Lower-case letters, digits and hyphens.",
    ),
]
LongText = Annotated[str, Field(max_length=4000)]
Names = Annotated[
    dict[LanguageKey, Name],
    Field(min_length=1, max_length=20, examples=[{"en": "Lagos Returnee Clinic"}]),
]
Texts = Annotated[
    dict[LanguageKey, LongText],
    Field(max_length=20, examples=[{"en": "Primary care for returnees."}]),
]
WebUrl = Annotated[HttpUrl, Field(max_length=500, examples=["https://clinic.example.ng"])]

STRICT = ConfigDict(extra="forbid")


def _areas_in_country(country: str | None, areas: list[str] | None) -> None:
    for area in areas or []:
        if country and not area.startswith(f"{country}-"):
            raise ValueError(
                Message(
                    "admin area '{area}' is not in country {country}", area=area, country=country
                )
            )


class Coordination(BaseModel):
    """What an organisation coordinates: countries, optionally narrowed to areas and categories."""

    model_config = STRICT
    countries: list[Country] = Field(min_length=1, max_length=50)
    admin_areas: list[AdminArea] = Field(default_factory=list, max_length=500)
    categories: list[ServiceCategory] = Field(
        default_factory=list, description="Empty means every category."
    )


class OrganisationFields(BaseModel):
    """Fields an admin may set on an organisation."""

    model_config = STRICT
    name: Names
    description: Texts = Field(default_factory=dict)
    stakeholder_type: StakeholderType = Field(examples=["ngo"])
    engagement_level: EngagementLevel = Field("information", examples=["close_management"])
    host_office: bool = Field(False, description="A host-country return office (sends referrals).")
    country: Country
    admin_areas: list[AdminArea] = Field(default_factory=list, max_length=500)
    languages: list[Language] = Field(default_factory=list, max_length=50)
    website: WebUrl | None = None
    email: Annotated[str, Field(max_length=320, examples=["info@clinic.example.ng"])] | None = None
    webhook_url: WebUrl | None = None
    coordination: Coordination | None = None
    coordinator_org_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _areas_match_country(self) -> OrganisationFields:
        _areas_in_country(self.country, self.admin_areas)
        return self


class OrganisationCreate(OrganisationFields):
    """A new organisation; `id` may be given (imports, fixed demo ids)."""

    id: uuid.UUID | None = None


class OrganisationUpdate(BaseModel):
    """Fields to change; providers may send only `webhook_url` for their own organisation."""

    model_config = STRICT
    name: Names | None = None
    description: Texts | None = None
    stakeholder_type: StakeholderType | None = None
    engagement_level: EngagementLevel | None = None
    host_office: bool | None = None
    country: Country | None = None
    admin_areas: list[AdminArea] | None = Field(None, max_length=500)
    languages: list[Language] | None = Field(None, max_length=50)
    website: WebUrl | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    webhook_url: WebUrl | None = None
    coordination: Coordination | None = None
    coordinator_org_id: uuid.UUID | None = None


class KeyCreate(BaseModel):
    """A public encryption key to register; the `kid` comes from the JWK."""

    model_config = STRICT
    jwk: dict[str, Any] = Field(examples=[EXAMPLE_JWK], description="Public JWK, `use: enc`.")
    valid_from: AwareDatetime | None = Field(None, description="Default: now.")
    valid_until: AwareDatetime | None = Field(None, examples=["2027-12-31T00:00:00Z"])


class KeyUpdate(BaseModel):
    """Retire (stop using for new referrals) or revoke (never use again) a key."""

    model_config = STRICT
    status: Literal["retired", "revoked"]


class Actor(BaseModel):
    """Who did something: the API client, its organisation and the role it acted in."""

    client_id: str = Field(examples=["steward-console"])
    org_id: str = Field(examples=["0192f000-0000-7000-8000-000000000006"])
    role: str = Field(examples=["admin"])


class KeyRead(BaseModel):
    """A registered public key, with who registered it."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    kid: str
    jwk: dict[str, Any]
    status: KeyStatus = Field(
        description="`pending`: registered by an admin, not used until the organisation "
        "confirms it (POST .../keys/{kid}/confirm)."
    )
    valid_from: datetime
    valid_until: datetime | None
    created_at: datetime
    added_by: Actor | None = Field(
        description="Null for keys registered before refex recorded who did it."
    )
    added_by_admin: bool = Field(
        description="True when a directory admin of another organisation registered it."
    )
    confirmed_at: datetime | None = Field(
        None, description="When the organisation confirmed a key an admin registered for it."
    )


EventType = Literal[
    "key.added",
    "key.added-by-admin",
    "key.confirmed",
    "key.retired",
    "key.revoked",
]


class OrganisationEventRead(BaseModel):
    """Something done to the organisation's keys: what, which key, by whom, when."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    type: EventType = Field(examples=["key.added-by-admin"])
    kid: str | None = Field(examples=["clinic-2026-01"])
    thumbprint: str | None = Field(
        description="RFC 7638 SHA-256 thumbprint of the public key, to check it is yours.",
        examples=["NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"],
    )
    actor: Actor
    by_admin: bool
    occurred_at: datetime


class LocationIn(BaseModel):
    """Where a service is delivered."""

    model_config = STRICT
    name: Name | None = None
    latitude: float = Field(ge=-90, le=90, examples=[6.5244])
    longitude: float = Field(ge=-180, le=180, examples=[3.3792])
    address: dict[Literal["address_1", "city", "region", "postal_code", "country"], LongText] = (
        Field(default_factory=dict, examples=[{"address_1": "12 Marina Road", "city": "Lagos"}])
    )


class ServiceFields(BaseModel):
    """Fields an admin may set on a service."""

    model_config = STRICT
    organisation_id: uuid.UUID
    category: ServiceCategory = Field(examples=["health"])
    name: Names
    description: Texts = Field(default_factory=dict)
    eligibility: LongText | None = Field(None, examples=["Returnees within 12 months of return"])
    fees: LongText | None = Field(None, examples=["Free; medication cost-shared 50%"])
    languages: list[Language] = Field(default_factory=list, max_length=50)
    capacity: int | None = Field(None, ge=0, le=1_000_000, examples=[40])
    accepting_referrals: bool = True
    country: Country
    admin_areas: list[AdminArea] = Field(default_factory=list, max_length=500)
    location: LocationIn | None = None

    @model_validator(mode="after")
    def _areas_match_country(self) -> ServiceFields:
        _areas_in_country(self.country, self.admin_areas)
        return self


class ServiceCreate(ServiceFields):
    """A new service; `id` may be given."""

    id: uuid.UUID | None = None


class ServiceUpdate(BaseModel):
    """Fields to change; providers may send only `accepting_referrals` for their own services."""

    model_config = STRICT
    category: ServiceCategory | None = None
    name: Names | None = None
    description: Texts | None = None
    eligibility: LongText | None = None
    fees: LongText | None = None
    languages: list[Language] | None = Field(None, max_length=50)
    capacity: int | None = Field(None, ge=0, le=1_000_000)
    accepting_referrals: bool | None = None
    country: Country | None = None
    admin_areas: list[AdminArea] | None = Field(None, max_length=500)
    location: LocationIn | None = None


class SearchHit(BaseModel):
    """One search result: the service's essentials and, for `near=` searches, its distance."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    category: str
    name: dict[str, str] = Field(examples=[{"fr": "Formation professionnelle — Dakar"}])
    display_name: str = Field(
        description="The name in the caller's language (Accept-Language: en or fr), else in "
        "English, else the first one given.",
        examples=["Formation professionnelle — Dakar"],
    )
    display_language: str = Field(description="The language of `display_name`.", examples=["fr"])
    country: str
    admin_areas: list[str]
    languages: list[str]
    accepting_referrals: bool
    intake_status: Literal["open", "limited", "temporarily_closed"] = Field(
        "open", description="What the provider says of its intake now (PUT .../intake)."
    )
    places_left: int | None = Field(None, examples=[4])
    waiting_days: int | None = Field(None, examples=[10])
    latitude: float | None
    longitude: float | None
    distance_km: float | None = Field(None, examples=[3.2])


class SearchPage(BaseModel):
    """One page of search results."""

    items: list[SearchHit]
    next_cursor: str | None = Field(None, examples=["WyJpZCIsIjAxOTJmMDAwIl0"])


class ContactChannel(BaseModel):
    """One way to reach a focal point."""

    model_config = STRICT
    type: Literal["phone", "email", "whatsapp", "signal", "sms", "other"] = Field(
        examples=["phone"]
    )
    value: Annotated[str, Field(min_length=1, max_length=320, examples=["+234 1 555 0100"])]


class FocalPointFields(BaseModel):
    """Fields of a focal point."""

    model_config = STRICT
    name: Name = Field(examples=["Referral desk"])
    role: Name | None = Field(None, examples=["Case manager"])
    contact_channels: list[ContactChannel] = Field(default_factory=list, max_length=10)
    schedule: Schedule
    response_time_hours: int = Field(ge=1, le=720, examples=[8])
    backup_focal_point_id: uuid.UUID | None = None
    first_contact_categories: list[DataCategory] = Field(
        default_factory=list, examples=[["identity.basic", "contact"]]
    )


class FocalPointCreate(FocalPointFields):
    """A new focal point of an organisation, optionally dedicated to one of its services."""

    id: uuid.UUID | None = None
    organisation_id: uuid.UUID
    service_id: uuid.UUID | None = None


class FocalPointUpdate(BaseModel):
    """Fields to change."""

    model_config = STRICT
    name: Name | None = None
    role: Name | None = None
    contact_channels: list[ContactChannel] | None = Field(None, max_length=10)
    schedule: Schedule | None = None
    response_time_hours: int | None = Field(None, ge=1, le=720)
    backup_focal_point_id: uuid.UUID | None = None
    first_contact_categories: list[DataCategory] | None = None


class FocalPointRead(BaseModel):
    """A focal point as stored."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    service_id: uuid.UUID | None
    name: str
    role: str | None
    contact_channels: list[dict[str, str]]
    schedule: dict[str, Any]
    response_time_hours: int
    backup_focal_point_id: uuid.UUID | None
    first_contact_categories: list[str]
    row_version: int
    created_at: datetime
    updated_at: datetime


EMERGENCY_CATEGORIES_DESCRIPTION = (
    "What an emergency override (life at risk) may disclose; a subset of "
    "`permitted_categories`. Omitted: identity.basic, contact and health.mental, keeping only "
    "those the agreement permits."
)


SEALED_REQUIRED_DESCRIPTION = (
    "True: referrals under this agreement must be sealed by the sender (one JWE per section, "
    "encrypted by the sender's own system); refex refuses plaintext case files for it."
)


class AgreementCreate(BaseModel):
    """A new agreement, or (with `series_id`) a new version of an existing one."""

    model_config = STRICT
    id: uuid.UUID | None = None
    series_id: uuid.UUID | None = Field(None, description="Give it to add a version.")
    sender_org_id: uuid.UUID | None = Field(None, description="Null: any host office.")
    provider_org_id: uuid.UUID
    service_categories: list[ServiceCategory] = Field(min_length=1, examples=[["health"]])
    permitted_categories: list[DataCategory] = Field(
        min_length=1, examples=[["identity.basic", "contact", "health.physical"]]
    )
    purpose: Purpose = Purpose.REFERRAL
    retention_days: int = Field(ge=1, le=3650, examples=[365])
    emergency_override_allowed: bool = False
    emergency_categories: list[DataCategory] | None = Field(
        None,
        max_length=len(DataCategory),
        description=EMERGENCY_CATEGORIES_DESCRIPTION,
        examples=[["identity.basic", "contact"]],
    )
    sealed_required: bool = Field(False, description=SEALED_REQUIRED_DESCRIPTION)
    pathway: Pathway = Field(
        Pathway.INTERNATIONAL,
        description="`international`: a host office (or, with no sender, any host office) to a "
        "provider in the country of origin. `national`: a provider, coordinating body or local "
        "authority to another provider of the same country. `local`: as national, and both "
        "share an administrative area. Domestic agreements name their sender.",
        examples=["international"],
    )
    valid_from: AwareDatetime = Field(examples=["2026-01-01T00:00:00Z"])
    valid_until: AwareDatetime | None = Field(None, examples=["2027-12-31T00:00:00Z"])
    programme: ProgrammeCode | None = Field(
        None, description="Code of a registered programme (GET /programmes); null: none."
    )
    document_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _window(self) -> AgreementCreate:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError(N_("valid_until must be after valid_from"))
        return self


class AgreementUpdate(BaseModel):
    """End a version, or correct its programme, document hash or emergency categories."""

    model_config = STRICT
    valid_until: AwareDatetime | None = None
    emergency_categories: list[DataCategory] | None = Field(
        None,
        max_length=len(DataCategory),
        description="A subset of the version's `permitted_categories`.",
        examples=[["identity.basic", "contact"]],
    )
    programme: ProgrammeCode | None = None
    document_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


Countries = Annotated[list[Country], Field(min_length=1, max_length=250)]


def _unique_countries(countries: list[str]) -> list[str]:
    return sorted(set(countries))


class ProgrammeFields(BaseModel):
    """What an admin registers about a programme."""

    model_config = STRICT
    name: Names = Field(examples=[{"en": "EU Reintegration Programme", "fr": "Programme UE"}])
    donor: Name = Field(examples=["European Union"])
    host_countries: Annotated[Countries, AfterValidator(_unique_countries)] = Field(
        examples=[["DE", "IT"]]
    )
    origin_countries: Annotated[Countries, AfterValidator(_unique_countries)] = Field(
        examples=[["NG", "SN"]]
    )
    starts_at: AwareDatetime = Field(examples=["2026-01-01T00:00:00Z"])
    ends_at: AwareDatetime | None = Field(None, examples=["2028-01-01T00:00:00Z"])

    @model_validator(mode="after")
    def _period(self) -> ProgrammeFields:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError(N_("ends_at must be after starts_at"))
        return self


class ProgrammeCreate(ProgrammeFields):
    """A new programme; its `code` is how agreements and referrals name it."""

    id: uuid.UUID | None = None
    code: ProgrammeCode


class ProgrammeUpdate(BaseModel):
    """Fields to change; agreements already in the programme must still fit."""

    model_config = STRICT
    name: Names | None = None
    donor: Name | None = None
    host_countries: Annotated[Countries, AfterValidator(_unique_countries)] | None = None
    origin_countries: Annotated[Countries, AfterValidator(_unique_countries)] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class ProgrammeRead(BaseModel):
    """A registered programme."""

    model_config = STRICT
    id: uuid.UUID
    code: str = Field(examples=["eu-reintegration-2026"])
    name: dict[str, str]
    donor: str | None = Field(description="Null only on programmes migrated from free text.")
    host_countries: list[str] = Field(
        description="Empty only on migrated programmes, whose countries are not checked."
    )
    origin_countries: list[str]
    starts_at: datetime
    ends_at: datetime | None
    row_version: int
    created_at: datetime
    updated_at: datetime


class Availability(BaseModel):
    """Whether a service's focal point is open at a moment, and when it next opens."""

    service_id: uuid.UUID
    focal_point_id: uuid.UUID
    at: datetime
    open: bool
    next_opening: datetime
    timezone: str = Field(examples=["Africa/Lagos"])
    response_time_hours: int
    response_due_at: datetime = Field(description="`at` + the response time in business hours.")
