"""Request and response bodies of the consent service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.clock import utcnow
from shared.contracts.consent import Basis as Basis
from shared.contracts.consent import Categories, CountryCode, OrgId, unique_categories
from shared.contracts.consent import Decision as Decision
from shared.contracts.consent import DecisionRequest as DecisionRequest
from shared.contracts.consent import DisclosureCreate as DisclosureCreate
from shared.contracts.consent import DisclosureRecorded as DisclosureRecorded
from shared.contracts.consent import SubjectRef as SubjectRef
from shared.i18n import N_
from shared.outbox import DeadLetterRead
from shared.vocabulary import DataCategory, Purpose, ServiceCategory

Sha256Hex = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{64}$"),
    Field(examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]),
]


class StrictModel(BaseModel):
    """Refuse unknown fields: they would pass through unchecked."""

    model_config = ConfigDict(extra="forbid")


class Grantor(StrEnum):
    """Who gave the consent."""

    SELF = "self"
    PARENT = "parent"
    GUARDIAN = "guardian"


class EvidenceMethod(StrEnum):
    """How the consent was obtained."""

    WRITTEN = "written"
    VERBAL_WITNESSED = "verbal_witnessed"
    ELECTRONIC = "electronic"


class WithdrawalReason(StrEnum):
    """Why a consent was withdrawn (a code, so no free text with personal data is stored)."""

    RETURNEE_REQUEST = "returnee_request"
    GRANTOR_REQUEST = "grantor_request"
    RECORDED_IN_ERROR = "recorded_in_error"
    OTHER = "other"


class OrganisationGrantee(StrictModel):
    """The consent names one organisation."""

    kind: Literal["organisation"] = "organisation"
    org_id: OrgId


class ServiceCategoryGrantee(StrictModel):
    """The consent names any provider of a service category in a country."""

    kind: Literal["service_category"] = "service_category"
    service_category: ServiceCategory = Field(examples=["health"])
    country: CountryCode


Grantee = Annotated[OrganisationGrantee | ServiceCategoryGrantee, Field(discriminator="kind")]


class Evidence(StrictModel):
    """Proof the consent was given: the method and the SHA-256 of the signed form."""

    method: EvidenceMethod = Field(examples=["written"])
    form_sha256: Sha256Hex


def _in_utc(value: datetime) -> datetime:
    """Refuse naive times and times UTC cannot hold (e.g. year 9999 west of Greenwich)."""
    if value.tzinfo is None:
        raise ValueError(N_("needs a time zone (end it with Z for UTC)"))
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(N_("is outside the dates UTC can represent; check the year")) from None


LANGUAGE_TAG_MAX = 35  # RFC 5646 section 4.4.1: tags of up to 35 characters must be kept whole


class ConsentCreate(StrictModel):
    """A consent to record before any transfer."""

    subject_ref: SubjectRef
    grantor: Grantor = Field(examples=["self"])
    grantee: Grantee
    purpose: Purpose = Field(examples=["referral"])
    categories: Categories
    valid_from: datetime | None = Field(
        None, description="Start of validity (default: now).", examples=["2026-11-25T10:00:00Z"]
    )
    valid_until: datetime = Field(
        description="End of validity; must be in the future and after valid_from.",
        examples=["2027-05-25T10:00:00Z"],
    )
    evidence: Evidence
    language: str = Field(
        max_length=LANGUAGE_TAG_MAX,
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="BCP 47 tag (at most 35 characters) of the language the consent "
        "conversation was held in.",
        examples=["en", "yo", "pcm"],
    )

    @field_validator("valid_from")
    @classmethod
    def _valid_from_in_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _in_utc(value)

    @field_validator("valid_until")
    @classmethod
    def _valid_until_ahead(cls, value: datetime, info: ValidationInfo) -> datetime:
        until = _in_utc(value)
        if until <= utcnow():
            raise ValueError(N_("has already passed; a consent must end in the future"))
        valid_from = info.data.get("valid_from")
        if valid_from is not None and until <= valid_from:
            raise ValueError(N_("must be after valid_from"))
        return until

    @model_validator(mode="after")
    def _dedupe(self) -> ConsentCreate:
        self.categories = unique_categories(self.categories)
        return self


class ConsentStatus(StrEnum):
    """Whether a consent counts now."""

    ACTIVE = "active"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class ConsentRead(BaseModel):
    """A recorded consent."""

    id: uuid.UUID = Field(examples=["0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"])
    subject_ref: SubjectRef
    grantor: Grantor
    grantee: Grantee
    purpose: Purpose
    categories: list[DataCategory]
    valid_from: datetime
    valid_until: datetime
    evidence: Evidence
    language: str = Field(examples=["en"])
    recorded_by_org: str = Field(examples=["0192f000-0000-7000-8000-000000000001"])
    recorded_by_client: str = Field(examples=["host-office-berlin"])
    recorded_at: datetime
    status: ConsentStatus = Field(examples=["active"])
    withdrawn_at: datetime | None = None
    withdrawal_reason: WithdrawalReason | None = None
    ledger_index: int = Field(examples=[41])


class ConsentReceiptRead(BaseModel):
    """A consent receipt for the returnee, in the consent's language; no personal data."""

    consent_id: uuid.UUID = Field(examples=["0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"])
    language: str = Field(
        description="Language of `text`: the consent's own when refex has it, else English.",
        examples=["fr"],
    )
    ledger_index: int = Field(
        description="Index of the consent.granted ledger entry; verify it with "
        "GET /ledger/entries/{index}/proof.",
        examples=[41],
    )
    status: ConsentStatus = Field(examples=["active"])
    categories: list[DataCategory]
    purpose: Purpose
    valid_until: datetime
    text: str = Field(
        description="What was consented to, to whom, until when and how to withdraw, in words.",
        examples=[
            "Reçu de consentement\n\nVous avez accepté que l'organisation 0192f000-… reçoive "
            "les informations suivantes vous concernant :\n- votre santé physique\n…"
        ],
    )


class WithdrawalCreate(StrictModel):
    """Why the consent is withdrawn; it takes effect at once."""

    reason: WithdrawalReason = Field(examples=["returnee_request"])


class DisclosureRead(BaseModel):
    """What went to whom, when, on which basis."""

    id: uuid.UUID
    referral_id: uuid.UUID
    sender_org_id: str
    recipient_org_id: str
    categories: list[DataCategory]
    basis: Basis
    consent_ids: list[uuid.UUID]
    override_id: uuid.UUID | None
    recorded_at: datetime
    ledger_index: int


STATEMENT_NOTE = (
    "Free text that may hold health information: refex stores only its SHA-256 and length, "
    "never the text. Keep the text in your own case file."
)


class OverrideCreate(StrictModel):
    """A request to share minimal categories without consent because a life is at risk."""

    subject_ref: SubjectRef
    recipient_org_id: OrgId
    service_id: uuid.UUID = Field(examples=["0192f000-0000-7000-8000-00000000a001"])
    categories: Categories
    statement: str = Field(
        min_length=1, max_length=8000, description=STATEMENT_NOTE, examples=["Acute risk ..."]
    )

    @model_validator(mode="after")
    def _dedupe(self) -> OverrideCreate:
        self.categories = unique_categories(self.categories)
        return self


class OverrideAttest(StrictModel):
    """A mental-health professional's attestation that a life is at risk."""

    registration_number: str = Field(
        min_length=3, max_length=64, pattern=r"^[A-Za-z0-9./ -]+$", examples=["MDCN/2019/44812"]
    )
    statement: str = Field(min_length=1, max_length=8000, description=STATEMENT_NOTE)
    duration_hours: int = Field(
        72, ge=1, le=72, description="How long the override lasts; at most 72 hours."
    )
    professional_org_id: OrgId | None = Field(
        None,
        description="The organisation the attesting professional works for (default: the "
        "caller's); recorded with the attestation.",
    )


class OverrideEndReason(StrEnum):
    """Why an override ends before its time."""

    CONSENT_OBTAINED = "consent_obtained"
    RISK_RESOLVED = "risk_resolved"
    REQUESTED_IN_ERROR = "requested_in_error"
    OTHER = "other"


class OverrideEnd(StrictModel):
    """Why the override ends now."""

    reason: OverrideEndReason = Field(examples=["consent_obtained"])


class OverrideStatus(StrEnum):
    """Where an override stands."""

    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"
    EXPIRED = "expired"


class OverrideRead(BaseModel):
    """An emergency override; statements appear only as hash and length."""

    id: uuid.UUID
    subject_ref: str
    requesting_org: str
    recipient_org_id: str
    service_id: uuid.UUID
    service_category: str = Field(examples=["mental_health_psychosocial"])
    categories: list[DataCategory]
    status: OverrideStatus
    requested_at: datetime
    request_statement_sha256: str
    request_statement_length: int
    attested_at: datetime | None = None
    attested_by_org: str | None = None
    registration_number: str | None = None
    attestation_statement_sha256: str | None = None
    attestation_statement_length: int | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: OverrideEndReason | None = None


class TreeHeadRead(BaseModel):
    """A signed tree head: size, root and time, signed with Ed25519."""

    tree_size: int = Field(examples=[1024])
    root_hash: str = Field(description="Hex SHA-256 root.", examples=["5dc9da79a70659a9..."])
    timestamp_ms: int = Field(examples=[1795600000000])
    key_id: str = Field(examples=["3f1c0a9e2b7d4c11"])
    signature: str = Field(description="Base64 Ed25519 signature of the canonical statement.")
    signed_statement: str = Field(
        description="The exact signed bytes (canonical JSON), for independent checking."
    )


class InclusionProofRead(BaseModel):
    """Proof that an entry is in the tree of a given size (RFC 9162 2.1.3)."""

    index: int = Field(examples=[5])
    tree_size: int = Field(examples=[8])
    leaf_hash: str
    audit_path: list[str]
    root_hash: str


class ConsistencyProofRead(BaseModel):
    """Proof that the tree of size `first` is a prefix of the tree of size `second`."""

    first: int = Field(examples=[6])
    second: int = Field(examples=[8])
    first_root: str
    second_root: str
    proof: list[str]


class LedgerEntryRead(BaseModel):
    """One ledger entry; the body is null once retention purged it."""

    index: int
    event_type: str = Field(examples=["consent.granted"])
    appended_at: datetime
    leaf_hash: str
    body: dict[str, Any] | None
    purged_at: datetime | None = None


class PublicKeyRead(BaseModel):
    """The key that verifies tree heads."""

    algorithm: Literal["Ed25519"] = "Ed25519"
    key_id: str
    public_key: str = Field(description="Raw 32-byte public key, base64.")
    jwk: dict[str, str] = Field(examples=[{"kty": "OKP", "crv": "Ed25519", "x": "..."}])


class WithdrawalDeadLetter(DeadLetterRead):
    """A withdrawal notice that exhausted its attempts: ids and the last error only."""

    consent_id: uuid.UUID
