"""What the workspace reads from the public API and takes from its forms."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.consent import SubjectRef
from shared.vocabulary import DataCategory, ServiceCategory

# The referral statuses and codes of the public API (its OpenAPI names them).
StatusCode = Literal[
    "requested",
    "received",
    "accepted",
    "in-progress",
    "on-hold",
    "completed",
    "rejected",
    "cancelled",
    "failed",
]
ReasonCode = Literal[
    "not-eligible",
    "no-capacity",
    "service-unavailable",
    "declined-by-returnee",
    "duplicate",
    "referred-elsewhere",
    "awaiting-information",
    "returnee-unavailable",
    "could-not-contact",
    "other",
]
OutcomeCode = Literal[
    "got-help",
    "could-not-contact",
    "not-eligible",
    "no-capacity",
    "declined-by-returnee",
    "referred-elsewhere",
]
STATUSES: tuple[str, ...] = get_args(StatusCode)
REASONS: tuple[str, ...] = get_args(ReasonCode)
OUTCOMES: tuple[str, ...] = get_args(OutcomeCode)
NEEDS_REASON = frozenset({"rejected", "cancelled", "on-hold", "failed"})


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Withheld(_Answer):
    """A category that was not shared, and why (explained in the reader's language)."""

    category: str
    reason: str
    explanation: str = ""


class ReferralView(_Answer):
    """A referral as the API returns it to a party."""

    id: str
    version: int
    status: str
    status_reason: str | None = None
    sender_org_id: str
    recipient_org_id: str
    service_id: str
    service_category: str
    programme: str | None = None
    purpose: str
    urgency: str
    emergency: bool = False
    shared_categories: list[str] = Field(default_factory=list)
    withheld: list[Withheld] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    acknowledge_by: datetime | None = None
    respond_by: datetime | None = None
    overdue: bool = False
    created_at: datetime
    updated_at: datetime
    outcome: str | None = None
    allowed_moves: list[str] = Field(default_factory=list)
    payload_mode: Literal["server", "sealed"] = "server"
    payload: dict[str, Any] | None = None


class NoteView(_Answer):
    """A note as the API lists it to a party: metadata and its JWE, opened in the browser."""

    id: str
    author_org_id: str
    kind: str = "note"
    created_at: datetime
    body: dict[str, Any] | None = None


class SealedNoteIn(BaseModel):
    """A note the browser sealed to both parties' keys; a note in clear text is refused."""

    model_config = ConfigDict(extra="forbid")

    sealed: dict[str, Any] = Field(min_length=1, max_length=6)
    key_set_fingerprint: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class InboxFilter(BaseModel):
    """The inbox's filters, as the query string carries them."""

    model_config = ConfigDict(extra="ignore")

    status: StatusCode | None = None
    overdue: bool = False
    programme: str | None = Field(None, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    category: ServiceCategory | None = None

    def api_params(self, box: Literal["received", "sent"] = "received") -> dict[str, str]:
        """The same filters as referral list parameters, for one box."""
        params: dict[str, str] = {"box": box}
        if self.status:
            params["status"] = self.status
        if self.overdue:
            params["overdue"] = "true"
        if self.programme:
            params["programme"] = self.programme
        if self.category:
            params["category"] = self.category.value
        return params


class StatusForm(BaseModel):
    """A status change as the referral page's forms send it."""

    model_config = ConfigDict(extra="ignore")

    status: StatusCode
    reason: ReasonCode | None = None
    outcome: OutcomeCode | None = None
    feedback_score: int | None = Field(None, ge=1, le=5)

    def api_body(self) -> dict[str, Any]:
        """The StatusChange body of the referral API."""
        body: dict[str, Any] = {"status": self.status}
        if self.reason:
            body["reason"] = self.reason
        if self.outcome:
            body["outcome"] = self.outcome
        if self.feedback_score:
            body["feedback"] = {"score": self.feedback_score}
        return body


class PublicKeyIn(BaseModel):
    """A public encryption JWK the browser made; any private member is refused."""

    model_config = ConfigDict(extra="forbid")

    kty: Literal["EC", "OKP"]
    crv: Literal["P-256", "X25519"]
    x: str = Field(max_length=128)
    y: str | None = Field(None, max_length=128)
    kid: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    use: Literal["enc"] = "enc"
    alg: Literal["ECDH-ES+A256KW"] = "ECDH-ES+A256KW"


class ConsentForm(BaseModel):
    """A consent as the return office's form sends it."""

    model_config = ConfigDict(extra="ignore")

    subject_ref: SubjectRef
    grantee_org_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    categories: list[DataCategory] = Field(min_length=1)
    valid_until: date
    method: Literal["written", "verbal_witnessed", "electronic"]
    form_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    language: str = Field("en", pattern=r"^[a-z]{2,3}$")

    def api_body(self) -> dict[str, Any]:
        """The ConsentCreate body of the consent API (valid to the end of the chosen day)."""
        return {
            "subject_ref": self.subject_ref,
            "grantor": "self",
            "grantee": {"kind": "organisation", "org_id": self.grantee_org_id},
            "purpose": "referral",
            "categories": [category.value for category in self.categories],
            "valid_until": f"{self.valid_until.isoformat()}T23:59:59Z",
            "evidence": {"method": self.method, "form_sha256": self.form_sha256},
            "language": self.language,
        }


class ReferralRequestIn(BaseModel):
    """What the preview and the send share: who, to which service, asking for what."""

    model_config = ConfigDict(extra="forbid")

    service_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    subject_ref: SubjectRef
    urgency: Literal["routine", "urgent", "emergency"] = "routine"
    requested_categories: list[DataCategory] = Field(min_length=1)


class SealedReferralIn(ReferralRequestIn):
    """A referral whose sections the browser sealed: the server only passes the JWEs on."""

    reservation: str = Field(max_length=2048)
    sections: dict[DataCategory, dict[str, Any]] = Field(min_length=1, max_length=12)


CATEGORIES = tuple(category.value for category in ServiceCategory)
DATA_CATEGORIES = tuple(category.value for category in DataCategory)


class OpenReferralView(_Answer):
    """An open referral as the API shows it to its coordinator: no personal data at all."""

    id: str
    status: str
    sender_org_id: str
    coordinator_org_id: str
    service_category: str
    country: str
    admin_area: str | None = None
    urgency: str
    requested_categories: list[str] = Field(default_factory=list)
    assigned_service_id: str | None = None
    created_at: datetime


class FollowedView(_Answer):
    """A referral the coordinator routed: status and deadlines only, never a payload."""

    open_referral_id: str
    open_status: str
    service_category: str
    assigned_org_id: str | None = None
    referral_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    acknowledge_by: datetime | None = None
    respond_by: datetime | None = None
    overdue: bool = False
    stalled_at: datetime | None = None
    outcome: str | None = None
    created_at: datetime
    updated_at: datetime


class MemberView(_Answer):
    """A member provider of the coordinating body, as the directory lists it."""

    id: str
    name: dict[str, str]
    country: str

    def display_name(self, language: str) -> str:
        """The name in the reader's language, else English, else any."""
        return self.name.get(language) or self.name.get("en") or next(iter(self.name.values()), "")


class ServiceChoice(_Answer):
    """A member's service a coordinator may assign (public directory data)."""

    id: str
    organisation_id: str
    display_name: str
    category: str
    country: str


class AssignForm(BaseModel):
    """The coordinator's choice, as the assign form sends it."""

    model_config = ConfigDict(extra="ignore")

    service_id: uuid.UUID
