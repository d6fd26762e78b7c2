"""What crosses the directory's boundary: organisations, services, agreements, keys, resolution.

The directory builds its answers with these models; the referral and consent services read the
same answers with them (see `shared.contracts.read_answer`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.business_hours import Schedule
from shared.money import Amount, Currency, Percentage
from shared.vocabulary import DataCategory, Pathway

STRICT = ConfigDict(extra="forbid")

EXAMPLE_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "kid": "clinic-2026-01",
    "use": "enc",
    "alg": "ECDH-ES+A256KW",
}
# An older directory does not name the emergency set: the SOP's default applies.
DEFAULT_EMERGENCY_CATEGORIES = (
    DataCategory.IDENTITY_BASIC,
    DataCategory.CONTACT,
    DataCategory.HEALTH_MENTAL,
)


class PublicJwk(BaseModel):
    """A public encryption key (EC P-256 or OKP X25519), as registered in the directory."""

    model_config = STRICT

    kty: Literal["EC", "OKP"] = Field(examples=["EC"])
    crv: str = Field(examples=["P-256"])
    x: str
    y: str | None = Field(None, description="EC keys only.")
    kid: str = Field(examples=["clinic-2026-01"])
    use: Literal["enc"] = "enc"
    alg: str | None = Field(None, examples=["ECDH-ES+A256KW"])

    @classmethod
    def from_stored(cls, jwk: dict[str, Any]) -> PublicJwk:
        """The key's public members from the stored JWK."""
        return cls.model_validate({k: v for k, v in jwk.items() if k in cls.model_fields})

    def as_jwk(self) -> dict[str, Any]:
        """The key as a JWK object for the encryption layer."""
        return self.model_dump(exclude_none=True)


class Jwks(BaseModel):
    """A JSON Web Key Set of public keys valid now."""

    model_config = STRICT

    keys: list[PublicJwk] = Field(examples=[[EXAMPLE_JWK]])

    @classmethod
    def from_stored(cls, keys: list[dict[str, Any]]) -> Jwks:
        """The set of these stored JWKs."""
        return cls(keys=[PublicJwk.from_stored(key) for key in keys])


class OrganisationRead(BaseModel):
    """An organisation as stored."""

    model_config = STRICT

    id: uuid.UUID
    name: dict[str, str]
    description: dict[str, str]
    stakeholder_type: str
    engagement_level: str
    host_office: bool
    country: str
    admin_areas: list[str]
    languages: list[str]
    website: str | None
    email: str | None
    webhook_url: str | None = Field(
        description="Shown to the organisation itself, admins and auditors; null for others."
    )
    coordination: dict[str, Any] | None
    coordinator_org_id: uuid.UUID | None
    row_version: int
    created_at: datetime
    updated_at: datetime


class ServiceRead(BaseModel):
    """A service as stored."""

    model_config = STRICT

    id: uuid.UUID
    organisation_id: uuid.UUID
    category: str
    name: dict[str, str]
    description: dict[str, str]
    eligibility: str | None
    fees: str | None
    languages: list[str]
    capacity: int | None
    accepting_referrals: bool
    country: str
    admin_areas: list[str]
    location: dict[str, Any] | None
    row_version: int
    created_at: datetime
    updated_at: datetime


CostShareBasis = Literal["percentage", "fixed"]


class CostShareRead(BaseModel):
    """Who pays which share of one service category under an agreement.

    `percentage` shares what is left after the fixed amounts; `cap` limits one share. Amounts
    are decimal strings in `currency`.
    """

    model_config = STRICT

    id: uuid.UUID
    agreement_id: uuid.UUID
    service_category: str = Field(examples=["health"])
    payer_org_id: uuid.UUID
    basis: CostShareBasis = Field(examples=["percentage"])
    percentage: Percentage | None = Field(None, description="Basis `percentage`: 0-100.")
    fixed_amount: Amount | None = Field(None, description="Basis `fixed`: the amount paid.")
    cap: Amount | None = Field(None, description="The most this share pays for one referral.")
    currency: Currency
    covers: dict[str, str] = Field(
        examples=[{"en": "Consultations and medication", "fr": "Consultations et médicaments"}]
    )
    row_version: int
    created_at: datetime
    updated_at: datetime

    def limit(self) -> Decimal | None:
        """The most this share may pay for one referral (None: no limit but the cost)."""
        amounts = [a for a in (self.fixed_amount, self.cap) if a is not None]
        return min(amounts) if amounts else None


class AgreementRead(BaseModel):
    """One version of an agreement."""

    model_config = STRICT

    id: uuid.UUID
    series_id: uuid.UUID
    version: int
    sender_org_id: uuid.UUID | None
    provider_org_id: uuid.UUID
    service_categories: list[str]
    permitted_categories: list[str]
    purpose: str
    retention_days: int
    emergency_override_allowed: bool
    emergency_categories: list[str] = Field(examples=[["identity.basic", "contact"]])
    sealed_required: bool = Field(
        False, description="Referrals under it must be sealed by the sender's own system."
    )
    pathway: Pathway = Field(
        Pathway.INTERNATIONAL,
        description="`international` (a host office to a provider), or between partners of one "
        "country: `national`, `local` (sharing an administrative area).",
    )
    valid_from: datetime
    valid_until: datetime | None
    programme: str | None
    document_sha256: str | None
    row_version: int
    cost_shares: list[CostShareRead] = Field(
        default_factory=list,
        description="Who pays which share of each service category (empty: no rules).",
    )

    def in_force(self, now: datetime) -> bool:
        """Whether this version applies at `now`."""
        return self.valid_from <= now and (self.valid_until is None or now < self.valid_until)


class ResolvedAgreement(BaseModel):
    """The agreement version in force."""

    model_config = STRICT

    id: uuid.UUID
    version: int
    sender_org_id: uuid.UUID | None = Field(description="Null: applies to any host office.")
    provider_org_id: uuid.UUID
    service_categories: list[str]
    permitted_categories: list[str] = Field(examples=[["identity.basic", "contact"]])
    purpose: str
    retention_days: int
    emergency_override_allowed: bool
    emergency_categories: list[str] = Field(
        default_factory=lambda: [str(c) for c in DEFAULT_EMERGENCY_CATEGORIES],
        description="What an emergency override may disclose (a subset of the permitted ones).",
        examples=[["identity.basic", "contact", "health.mental"]],
    )
    sealed_required: bool = Field(
        False,
        description="True: only sealed referrals (sections encrypted by the sender) are accepted.",
    )
    pathway: Pathway = Field(
        Pathway.INTERNATIONAL,
        description="`international`, `national` or `local`; an older directory's agreements "
        "are international.",
    )
    valid_from: datetime
    valid_until: datetime | None
    programme: str | None
    document_sha256: str | None


class ResolvedService(BaseModel):
    """The service a referral goes to."""

    model_config = STRICT

    id: uuid.UUID
    organisation_id: uuid.UUID
    category: str
    accepting_referrals: bool
    country: str
    admin_areas: list[str]
    name: dict[str, str]


class AgreementParty(BaseModel):
    """An agreement's sender or recipient organisation: where to notify it, keys to encrypt to."""

    model_config = STRICT

    organisation_id: uuid.UUID
    webhook_url: str | None = Field(
        description="Given to the refex services, admins, auditors and the organisation itself."
    )
    keys: Jwks
    country: str | None = Field(
        None, description="ISO 3166-1 alpha-2; null from a directory older than programmes."
    )


class ResolvedProgramme(BaseModel):
    """The programme the resolved agreement belongs to, as reports cut by it."""

    model_config = STRICT

    code: str = Field(examples=["eu-reintegration-2026"])
    donor: str | None = Field(examples=["European Union"])


class ResolvedFocalPoint(BaseModel):
    """Who answers, when, how fast, and what they need at first contact."""

    model_config = STRICT

    id: uuid.UUID
    schedule: Schedule
    response_time_hours: int
    first_contact_categories: list[str]
    backup_focal_point_id: uuid.UUID | None


class Resolution(BaseModel):
    """Everything a referral needs from the directory, in one answer."""

    model_config = STRICT

    agreement: ResolvedAgreement
    service: ResolvedService
    recipient: AgreementParty
    sender: AgreementParty
    focal_point: ResolvedFocalPoint | None
    backup_focal_point: ResolvedFocalPoint | None
    programme: ResolvedProgramme | None = None
