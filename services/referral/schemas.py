"""Request and response bodies of the referral service."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from shared.casefile import CaseFile
from shared.i18n import N_, Message, gettext
from shared.openapi import iso_8601_only
from shared.outbox import DeadLetterRead
from shared.vocabulary import (
    WITHHELD_EXPLANATIONS,
    DataCategory,
    Pathway,
    Purpose,
    ServiceCategory,
    WithheldReason,
)

SUBJECT_REF_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"
SubjectRef = Annotated[
    str,
    Field(
        pattern=SUBJECT_REF_PATTERN,
        examples=["hof-2026-7f3a9c1e5b2d4a60"],
        description="The host office's opaque pseudonym of the returnee (never a name).",
    ),
]
EXAMPLE_ID = "0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(N_("Input should be a time between the years 1 and 9999 in UTC")) from None


# A time with its zone, as UTC; a naive one or a bare number is a 422, never a guess.
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(iso_8601_only), AfterValidator(_in_utc)]
ProgrammeCode = Annotated[
    str,
    Field(min_length=2, max_length=64, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$"),
]


class Include(StrEnum):
    """What a list leaves out unless asked for."""

    PAYLOAD = "payload"


class Status(StrEnum):
    """FHIR Task status codes used for referrals."""

    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    ON_HOLD = "on-hold"
    FAILED = "failed"
    ENTERED_IN_ERROR = "entered-in-error"


CLOSED_STATUSES = frozenset(
    {Status.COMPLETED, Status.REJECTED, Status.CANCELLED, Status.FAILED, Status.ENTERED_IN_ERROR}
)


class Urgency(StrEnum):
    """How fast the returnee needs the service."""

    ROUTINE = "routine"
    URGENT = "urgent"


class Outcome(StrEnum):
    """What came of a completed referral."""

    GOT_HELP = "got-help"
    COULD_NOT_CONTACT = "could-not-contact"
    NOT_ELIGIBLE = "not-eligible"
    NO_CAPACITY = "no-capacity"
    DECLINED_BY_RETURNEE = "declined-by-returnee"
    REFERRED_ELSEWHERE = "referred-elsewhere"


class ReasonCode(StrEnum):
    """Why a referral was rejected, cancelled, put on hold or failed."""

    NOT_ELIGIBLE = "not-eligible"
    NO_CAPACITY = "no-capacity"
    SERVICE_UNAVAILABLE = "service-unavailable"
    DECLINED_BY_RETURNEE = "declined-by-returnee"
    DUPLICATE = "duplicate"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    NO_RESPONSE = "no-response"
    NO_LONGER_NEEDED = "no-longer-needed"
    REFERRED_ELSEWHERE = "referred-elsewhere"
    AWAITING_CONSENT = "awaiting-consent"
    AWAITING_INFORMATION = "awaiting-information"
    RETURNEE_UNAVAILABLE = "returnee-unavailable"
    COULD_NOT_CONTACT = "could-not-contact"
    ENTERED_IN_ERROR = "entered-in-error"
    OTHER = "other"


def _unique_categories(value: list[DataCategory]) -> list[DataCategory]:
    if len(set(value)) != len(value):
        raise ValueError(N_("list each category once"))
    return value


RequestedCategories = Annotated[
    list[DataCategory],
    Field(min_length=1, max_length=12),
    AfterValidator(_unique_categories),
]
REQUEST_EXAMPLE: dict[str, Any] = {
    "service_id": EXAMPLE_ID,
    "subject_ref": "hof-2026-7f3a9c1e5b2d4a60",
    "purpose": "referral",
    "urgency": "routine",
    "requested_categories": ["identity.basic", "contact", "health.physical", "health.mental"],
}


class PayloadMode(StrEnum):
    """Who encrypted the case file: refex on receipt (`server`) or the sender (`sealed`)."""

    SERVER = "server"
    SEALED = "sealed"


class ReferralRequest(BaseModel):
    """Who is referred to which service, for what, asking for which categories."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [REQUEST_EXAMPLE]})

    service_id: uuid.UUID
    subject_ref: SubjectRef
    purpose: Purpose = Purpose.REFERRAL
    urgency: Urgency = Urgency.ROUTINE
    requested_categories: RequestedCategories
    programme: ProgrammeCode | None = Field(
        None,
        description="The programme this referral belongs to (a code from the directory's GET "
        "/programmes). Needed when your organisation holds agreements with this provider under "
        "several programmes (else 422 `programme-required`, listing them).",
    )
    start_after: UtcDatetime | None = Field(
        None,
        description="Send before departure, due after arrival: the provider sees the referral "
        "at once and may prepare (acknowledge it), but its deadlines count from this time. At "
        "most 5 minutes in the past and 366 days ahead, and before the consent (or override) "
        "ends, else 422 `start-after-invalid`. Left out: due now.",
        examples=["2027-03-01T08:00:00Z"],
    )


class ReferralCreate(ReferralRequest):
    """A referral of one returnee to one service, the case file in the clear (server mode)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    **REQUEST_EXAMPLE,
                    "casefile": CaseFile.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                }
            ]
        },
    )

    casefile: CaseFile


JWE_EXAMPLE: dict[str, Any] = {
    "protected": "eyJlbmMiOiJBMjU2R0NNIiwiY3R5IjoiYXBwbGljYXRpb24vanNvbiJ9",
    "recipients": [
        {
            "header": {
                "alg": "ECDH-ES+A256KW",
                "kid": "clinic-2026-enc-1",
                "epk": {"kty": "EC", "crv": "P-256", "x": "...", "y": "..."},
            },
            "encrypted_key": "...",
        }
    ],
    "aad": "cmVmZXg6cmVmZXJyYWw6MDE5MmYwYzQtN2QxZS03Y2MzLTlhNTUtM2MxZjJhM2I0YzVkOnNlY3Rpb246"
    "Y29udGFjdA",
    "iv": "...",
    "ciphertext": "...",
    "tag": "...",
}
SECTIONS_DESCRIPTION = (
    "One JWE (general JSON serialisation, ECDH-ES+A256KW, A256GCM) per CaseFile section, keyed "
    "by the section's data category. Each JWE holds that section as JSON (the object the "
    "CaseFile has under the section's name), is encrypted to exactly the key set of the "
    "preview (one recipient entry per `kid`) and binds as `aad` the UTF-8 text "
    "`refex:referral:<referral_id>:section:<category>`. Only `enc` and `cty` may appear in the "
    "protected header and only `alg`, `kid` and `epk` in each recipient header."
)


class SealedReferralCreate(ReferralRequest):
    """A referral whose sections the sender's own system encrypted (sealed mode)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    **REQUEST_EXAMPLE,
                    "reservation": "eyJyaWQiOiIwMTkyZjBjNC0uLi4ifQ.c2lnbmF0dXJl",
                    "sections": {"contact": JWE_EXAMPLE},
                }
            ]
        },
    )

    reservation: str = Field(
        min_length=16,
        max_length=2048,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        description="The `reservation` of the decision preview these sections were sealed for.",
    )
    sections: dict[DataCategory, dict[str, Any]] = Field(
        min_length=1, max_length=12, description=SECTIONS_DESCRIPTION
    )


class RecipientKey(BaseModel):
    """One key a sealed section must be encrypted to."""

    party: Literal["sender", "recipient"]
    org_id: uuid.UUID
    thumbprint: str = Field(description="RFC 7638 SHA-256 thumbprint of the key (base64url).")
    jwk: dict[str, Any] = Field(description="The public JWK, `kid` included.")

    @property
    def kid(self) -> str:
        """The key's id in the directory."""
        return str(self.jwk["kid"])


class ReferralPreview(BaseModel):
    """What may be sent, to which keys, under which reserved referral id, until when."""

    referral_id: uuid.UUID = Field(
        examples=[EXAMPLE_ID], description="Reserved for the referral; bind it in every AAD."
    )
    reservation: str = Field(description="Send it back with the sealed sections.")
    expires_at: datetime
    agreement: AgreementRef
    sealed_required: bool = Field(description="Whether the agreement accepts only sealed mode.")
    permitted_categories: list[DataCategory] = Field(
        description="Requested ∩ agreement ∩ consent: seal only these sections."
    )
    withheld: list[WithheldCategory]
    basis: str = Field(examples=["consent"], description="`consent` or `emergency`.")
    keys: list[RecipientKey] = Field(description="Encrypt every section to all of these.")
    key_set_fingerprint: str = Field(
        description="SHA-256 over the sorted `kid:thumbprint` pairs of `keys` (base64url)."
    )
    aad: dict[DataCategory, str] = Field(
        description="The exact AAD text to bind to each permitted section.",
        examples=[
            {"contact": "refex:referral:0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d:section:contact"}
        ],
    )


class KeySetRead(BaseModel):
    """Both parties' keys valid now: what a sealed note must be encrypted to."""

    keys: list[RecipientKey]
    key_set_fingerprint: str


class WithheldCategory(BaseModel):
    """A requested or present category that was not shared, and why."""

    category: DataCategory
    reason: WithheldReason
    explanation: str = Field(
        "",
        description="What `reason` means, in the language `Accept-Language` asks for.",
        examples=[
            "The returnee's consent does not cover this category for this recipient and purpose."
        ],
    )

    @model_validator(mode="after")
    def _explained(self) -> WithheldCategory:
        self.explanation = self.explanation or gettext(WITHHELD_EXPLANATIONS[self.reason])
        return self


class AgreementRef(BaseModel):
    """The SOP/MoU the referral rests on."""

    id: uuid.UUID
    version: int


class EncryptedTo(BaseModel):
    """One key the payload was encrypted to: its directory `kid` and who holds it."""

    kid: str = Field(examples=["clinic-2026-enc-1"])
    party: Literal["sender", "recipient"] | None = Field(
        None, description="`sender` or `recipient`; null for referrals made before this was kept."
    )
    org_id: uuid.UUID | None = Field(
        None, description="The organisation holding the key (null when `party` is)."
    )


class Feedback(BaseModel):
    """The returnee's feedback at completion; the comment is stored encrypted."""

    model_config = ConfigDict(extra="forbid")
    score: int = Field(ge=1, le=5, examples=[4])
    comment: str | None = Field(None, max_length=2000, examples=["Seen quickly, kind staff."])


class PassedOn(BaseModel):
    """Where a referral went when its recipient passed it on: the new referral and to whom."""

    referral_id: uuid.UUID = Field(
        description="The onward referral (readable by its own parties only).",
        examples=["0192f0c4-8a10-7000-8000-00000000abcd"],
    )
    organisation_id: uuid.UUID = Field(examples=["0192f000-0000-7000-8000-000000000004"])
    service_id: uuid.UUID = Field(examples=["0192f000-0000-7000-8000-000000000102"])
    service_category: ServiceCategory = Field(examples=["mental_health_psychosocial"])


class ReferralRead(BaseModel):
    """A referral as a party (or, without the payload, an auditor) sees it."""

    id: uuid.UUID = Field(examples=[EXAMPLE_ID])
    version: int = Field(examples=[3], description="Changes with every update; the ETag.")
    status: Status
    status_reason: ReasonCode | None = None
    sender_org_id: uuid.UUID
    recipient_org_id: uuid.UUID
    service_id: uuid.UUID
    service_category: ServiceCategory
    programme: str | None = None
    host_country: str | None = Field(None, description="Country of the sending office.")
    origin_country: str | None = Field(None, description="Country of the service.")
    purpose: Purpose
    urgency: Urgency
    pathway: Pathway = Field(
        Pathway.INTERNATIONAL,
        description="`international` (from a host office), or `national`/`local` (between "
        "partners of the country of origin), after the agreement it was sent under.",
    )
    based_on: uuid.UUID | None = Field(
        None,
        description="On an onward referral: the referral its sender received and passed on.",
        examples=[None],
    )
    passed_on: PassedOn | None = Field(
        None,
        description="On a referral its recipient passed on (outcome `referred-elsewhere`): the "
        "new referral and the organisation and service it went to; nothing of its content.",
    )
    basis: str = Field(examples=["consent"], description="`consent` or `emergency`.")
    emergency: bool = Field(description="True when shared under a life-at-risk override.")
    consent_ids: list[str]
    override_id: str | None = None
    agreement: AgreementRef
    shared_categories: list[DataCategory]
    withheld: list[WithheldCategory]
    warnings: list[str] = Field(
        default_factory=list,
        examples=[
            [
                "The provider needs health.mental at first contact, but it was withheld "
                "(no_consent). The returnee's consent does not cover this category for this "
                "recipient and purpose. Ask the returnee for consent for it, or agree it in the "
                "SOP, then send a new referral."
            ]
        ],
    )
    start_after: datetime | None = Field(
        None, description="When the referral becomes due; its deadlines count from then."
    )
    acknowledge_by: datetime | None = None
    respond_by: datetime | None = None
    overdue: bool = False
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    accepted_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: Outcome | None = None
    feedback_score: int | None = None
    feedback: dict[str, Any] | None = Field(
        None,
        description="JWE of the feedback comment, readable by both parties only; left out of "
        "lists unless asked with `include=payload`.",
    )
    allowed_moves: list[Status] = Field(
        default_factory=list, description="Statuses the caller may move this referral to now."
    )
    payload_mode: PayloadMode = Field(
        PayloadMode.SERVER,
        description="`server`: refex minimised and encrypted the case file on receipt (it held "
        "the plaintext for that moment); `sealed`: the sender's system encrypted each section "
        "and refex never saw the plaintext.",
    )
    payload: dict[str, Any] | None = Field(
        None,
        description="The minimised CaseFile, readable by the recipient's and the sender's keys "
        "only. Server mode: one JWE (general JSON serialisation) of the whole CaseFile, AAD "
        '`refex:referral:<id>`. Sealed mode: `{"sections": {<category>: JWE}}`, each JWE '
        "one CaseFile section, AAD `refex:referral:<id>:section:<category>`. Absent for auditors, "
        "and left out of lists unless asked with `include=payload`.",
    )
    encrypted_to: list[EncryptedTo] = Field(
        default_factory=list,
        description="Every key the payload was encrypted to (one JWE recipient entry each): the "
        "directory key id and the party holding it. Shown to auditors too: key ids are not "
        "personal data, and they show a revoked or foreign key was never used.",
        examples=[
            [
                {
                    "kid": "clinic-2026-enc-1",
                    "party": "recipient",
                    "org_id": "0192f0c4-0000-7000-8000-00000000b002",
                },
                {
                    "kid": "berlin-2026-enc-1",
                    "party": "sender",
                    "org_id": "0192f0c4-0000-7000-8000-00000000a001",
                },
            ]
        ],
    )


class StatusChange(BaseModel):
    """Move a referral to another status."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "received"},
                {"status": "rejected", "reason": "no-capacity"},
                {
                    "status": "completed",
                    "outcome": "got-help",
                    "feedback": {"score": 5, "comment": "Helpful"},
                },
            ]
        },
    )
    status: Status
    reason: ReasonCode | None = None
    outcome: Outcome | None = None
    feedback: Feedback | None = None


class NoteCreate(BaseModel):
    """A follow-up note: its text (refex encrypts it) or a JWE sealed by the writer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "note", "text": "First appointment booked."},
                {"kind": "note", "sealed": JWE_EXAMPLE, "key_set_fingerprint": "b64url-sha256"},
            ]
        },
    )
    kind: str = Field("note", pattern=r"^(note|document)$", examples=["note"])
    text: str | None = Field(
        None,
        min_length=1,
        max_length=200_000,
        examples=["First appointment booked."],
        description="The note; the service's `note_max_chars` (20,000 by default) applies "
        "first (413), 200,000 characters is the bound of the API (422).",
    )
    sealed: dict[str, Any] | None = Field(
        None,
        description="Instead of `text`: the note as a JWE the writer encrypted to exactly the "
        "key set of `GET /referrals/{id}/keys`, AAD `refex:note:<referral_id>`. Required on "
        "sealed referrals.",
    )
    key_set_fingerprint: str | None = Field(
        None,
        max_length=64,
        description="With `sealed`: the `key_set_fingerprint` the note was encrypted to.",
    )

    @model_validator(mode="after")
    def _text_or_sealed(self) -> NoteCreate:
        if (self.text is None) == (self.sealed is None):
            raise ValueError("give either text or sealed (a JWE), not both and not neither")
        if self.sealed is not None and self.key_set_fingerprint is None:
            raise ValueError("a sealed note needs the key_set_fingerprint it was encrypted to")
        return self


class NoteRead(BaseModel):
    """A stored note: metadata and its JWE."""

    id: uuid.UUID
    referral_id: uuid.UUID
    author_org_id: uuid.UUID
    kind: str
    created_at: datetime
    body: dict[str, Any] | None = Field(
        None,
        description="JWE of the note, readable by both parties only. Lists leave it out unless "
        "asked with `include=payload`.",
    )


class ReferralStats(BaseModel):
    """Counts and times without personal data."""

    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_programme: dict[str, int]
    median_hours_to_acknowledge: float | None
    p90_hours_to_acknowledge: float | None
    median_hours_to_accept: float | None
    p90_hours_to_accept: float | None
    share_with_outcome: float | None
    overdue: int


class OpenReferralStatus(StrEnum):
    """Where an open referral stands."""

    OPEN = "open"
    ASSIGNED = "assigned"
    SUBMITTED = "submitted"
    CANCELLED = "cancelled"


class OpenReferralCreate(BaseModel):
    """Ask the coordinator of an area to choose a provider; carries no personal data."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "service_category": "health",
                    "country": "NG",
                    "admin_area": "NG-LA",
                    "purpose": "referral",
                    "urgency": "routine",
                    "requested_categories": ["identity.basic", "contact", "health.physical"],
                }
            ]
        },
    )

    service_category: ServiceCategory
    country: str = Field(pattern=r"^[A-Z]{2}$")
    admin_area: str | None = Field(None, pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
    purpose: Purpose = Purpose.REFERRAL
    urgency: Urgency = Urgency.ROUTINE
    requested_categories: list[DataCategory] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _area_in_country(self) -> OpenReferralCreate:
        # The directory refuses the pair; checked here it is a 422, not an upstream failure.
        if self.admin_area and not self.admin_area.startswith(f"{self.country}-"):
            raise ValueError(
                Message(
                    "admin_area {admin_area} is not in country {country}; fix one of them",
                    admin_area=self.admin_area,
                    country=self.country,
                )
            )
        return self


class OpenReferralRead(BaseModel):
    """An open referral as its sender and its coordinator see it."""

    id: uuid.UUID
    status: OpenReferralStatus
    sender_org_id: uuid.UUID
    coordinator_org_id: uuid.UUID
    service_category: ServiceCategory
    country: str
    admin_area: str | None
    purpose: Purpose
    urgency: Urgency
    requested_categories: list[DataCategory]
    assigned_service_id: uuid.UUID | None
    assigned_org_id: uuid.UUID | None
    referral_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class OpenReferralAssign(BaseModel):
    """The coordinator's choice of a member provider's service."""

    model_config = ConfigDict(extra="forbid")
    service_id: uuid.UUID


class OpenReferralSubmit(BaseModel):
    """The sender's case file for the assigned provider, under the usual rules."""

    model_config = ConfigDict(extra="forbid")
    subject_ref: SubjectRef
    casefile: CaseFile
    start_after: UtcDatetime | None = Field(
        None, description="As for `POST /referrals`: due from then, deadlines count from it."
    )


class WebhookDeadLetter(DeadLetterRead):
    """A webhook notification that exhausted its attempts: ids and the last error only."""

    referral_id: uuid.UUID
    target_org_id: uuid.UUID


SUPPRESSED = "<5"
Suppressed = Literal["<5"]
Count = Annotated[int | Suppressed, Field(examples=[12, "<5"])]
Figure = Annotated[float | Suppressed | None, Field(examples=[6.5, "<5", None])]


class Period(StrEnum):
    """How a report cuts time."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class ReportDimension(StrEnum):
    """What a report groups by besides the period."""

    PROGRAMME = "programme"
    DONOR = "donor"
    HOST_COUNTRY = "host_country"
    ORIGIN_COUNTRY = "origin_country"
    AREA = "area"
    PARTNER = "partner"
    CATEGORY = "category"
    OUTCOME = "outcome"


class ReportRow(BaseModel):
    """The figures of one period and group; counts under 5 show as "<5"."""

    period: str = Field(examples=["2026-03", "2026-Q1", "2026", "total"])
    group: dict[str, str | None] = Field(
        examples=[{"programme": "eu-reintegration-2026", "host_country": "DE"}],
        description="The value of each `group_by` dimension (null: not recorded).",
    )
    sent: Count
    acknowledged_on_time: Count = Field(description="Acknowledged by `acknowledge_by`.")
    accepted_on_time: Count = Field(description="Accepted by `respond_by`.")
    median_hours_to_acknowledge: Figure
    p90_hours_to_acknowledge: Figure
    median_hours_to_accept: Figure
    p90_hours_to_accept: Figure
    feedback_responses: Count
    mean_feedback_score: Figure = Field(description="1 (poor) to 5 (very good).")
    outcomes: dict[str, Count] = Field(examples=[{"got-help": 7, "could-not-contact": "<5"}])
    withheld: dict[str, Count] = Field(
        description="Withheld categories as `category:reason`, counted over referrals.",
        examples=[{"health.mental:no_consent": "<5"}],
    )


class ReferralReport(BaseModel):
    """Referral figures per period and group, with the total; no personal data."""

    period: Period
    from_date: date = Field(serialization_alias="from", examples=["2026-01-01"])
    to_date: date = Field(serialization_alias="to", examples=["2026-12-31"])
    programme: str | None = None
    host_country: str | None = None
    group_by: list[ReportDimension]
    threshold: int = Field(
        examples=[5],
        description='Counts below it show as "<5", as do figures resting on fewer values; in '
        "each column more rows are hidden until at least two are and they add up to 5 or more, "
        "so the total cannot give one back.",
    )
    rows: list[ReportRow]
    total: ReportRow


class ScorecardMonth(BaseModel):
    """A provider's response-time performance in one month."""

    period: str = Field(examples=["2026-03"])
    sent: Count
    acknowledged_on_time_pct: Figure
    accepted_on_time_pct: Figure
    median_hours_to_acknowledge: Figure


class Scorecard(BaseModel):
    """One provider's months."""

    partner_org_id: str
    months: list[ScorecardMonth]


class ScorecardPage(BaseModel):
    """Every provider's scorecard over the period; small counts hidden as in reports."""

    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    threshold: int
    items: list[Scorecard]


class PlanPhase(StrEnum):
    """Where on the returnee's path a plan item lies."""

    PRE_DEPARTURE = "pre_departure"
    ARRIVAL = "arrival"
    POST_RETURN = "post_return"
    COMMUNITY = "community"


class PlanItemStatus(StrEnum):
    """Where a plan item stands; an item with a referral follows that referral's status."""

    PLANNED = "planned"
    REFERRED = "referred"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


PLAN_ITEM_EXAMPLE: dict[str, Any] = {
    "phase": "post_return",
    "service_category": "health",
    "planned_date": "2027-03-02",
}


class PlanItemCreate(BaseModel):
    """One step of a plan: a service category in a phase, and the referral once one is sent."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PLAN_ITEM_EXAMPLE]})

    phase: PlanPhase
    service_category: ServiceCategory
    planned_date: date | None = Field(None, description="When the step is planned (a day).")
    status: PlanItemStatus = Field(
        PlanItemStatus.PLANNED,
        description="Set by hand while no referral is linked; then the referral's status rules.",
    )
    referral_id: uuid.UUID | None = Field(
        None,
        description="A referral your organisation sent for this returnee and this category.",
        examples=[EXAMPLE_ID],
    )


class PlanItemUpdate(BaseModel):
    """Change a plan item: its date, its status (no referral linked) or the linked referral."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"referral_id": EXAMPLE_ID}, {"status": "cancelled"}]},
    )

    planned_date: date | None = None
    status: PlanItemStatus | None = None
    referral_id: uuid.UUID | None = Field(None, description="null unlinks the referral.")

    @model_validator(mode="after")
    def _something(self) -> PlanItemUpdate:
        if not self.model_fields_set:
            raise ValueError(N_("give at least one of planned_date, status, referral_id"))
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError(N_("status cannot be null"))
        return self


class PlanCreate(BaseModel):
    """A reintegration plan for one returnee, named by your pseudonym; no personal data."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject_ref": "hof-2026-7f3a9c1e5b2d4a60",
                    "expected_return_date": "2027-03-01",
                    "programme": "eu-reintegration-2026",
                    "items": [
                        {"phase": "arrival", "service_category": "reception"},
                        PLAN_ITEM_EXAMPLE,
                    ],
                }
            ]
        },
    )

    subject_ref: SubjectRef
    expected_return_date: date | None = None
    programme: ProgrammeCode | None = None
    items: list[PlanItemCreate] = Field(default_factory=list, max_length=50)


class PlanUpdate(BaseModel):
    """Change a plan's expected return date or programme."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"expected_return_date": "2027-04-15"}]}
    )

    expected_return_date: date | None = None
    programme: ProgrammeCode | None = None

    @model_validator(mode="after")
    def _something(self) -> PlanUpdate:
        if not self.model_fields_set:
            raise ValueError(N_("give expected_return_date or programme"))
        return self


class PlanItemRead(BaseModel):
    """A plan item as a party sees it: where it stands, never what the referral carries."""

    id: uuid.UUID
    phase: PlanPhase
    service_category: ServiceCategory
    planned_date: date | None
    status: PlanItemStatus = Field(description="Derived from the linked referral, if any.")
    referral_id: uuid.UUID | None
    referral_status: Status | None = Field(None, description="The linked referral's status.")
    start_after: datetime | None = Field(None, description="When the linked referral is due.")
    respond_by: datetime | None = None
    updated_at: datetime


class PlanRead(BaseModel):
    """A plan with the items the caller may see: all for its owner, its own for each party."""

    id: uuid.UUID = Field(examples=[EXAMPLE_ID])
    version: int = Field(examples=[2], description="Changes with every update; the ETag.")
    owner_org_id: uuid.UUID
    programme: str | None
    expected_return_date: date | None
    items: list[PlanItemRead]
    progress: dict[PlanItemStatus, int] = Field(
        description="How many of the items shown are in each status.",
        examples=[{"planned": 1, "referred": 1, "in_progress": 0, "done": 1, "cancelled": 0}],
    )
    created_at: datetime
    updated_at: datetime


class FollowedReferral(BaseModel):
    """A referral a coordinator routed: its status and deadlines, never its payload."""

    open_referral_id: uuid.UUID
    open_status: OpenReferralStatus
    service_category: ServiceCategory
    assigned_org_id: uuid.UUID | None
    referral_id: uuid.UUID | None = Field(description="null until the sender submitted it.")
    status: Status | None = None
    status_reason: ReasonCode | None = None
    start_after: datetime | None = None
    acknowledge_by: datetime | None = None
    respond_by: datetime | None = None
    overdue: bool = False
    stalled_at: datetime | None = Field(
        None, description="When you were notified (`referral.stalled`) that it stalled."
    )
    acknowledged_at: datetime | None = None
    accepted_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: Outcome | None = None
    created_at: datetime
    updated_at: datetime
