"""The API's bodies as typed dictionaries; `tests/test_sdk_stack.py` checks them against OpenAPI."""

# No `from __future__ import annotations` here: TypedDict reads NotRequired[...] only from
# evaluated annotations.

from typing import Any, Literal, NotRequired, TypedDict


class RecipientKey(TypedDict):
    """One key a sealed section must be encrypted to."""

    party: Literal["sender", "recipient"]
    org_id: str
    thumbprint: str
    jwk: dict[str, Any]


class WithheldCategory(TypedDict):
    """A category that was not shared, and why."""

    category: str
    reason: str


class AgreementRef(TypedDict):
    """The agreement a referral rests on."""

    id: str
    version: int


class ReferralPreview(TypedDict):
    """What may be sent, to which keys, under which reserved id."""

    referral_id: str
    reservation: str
    expires_at: str
    agreement: AgreementRef
    sealed_required: bool
    permitted_categories: list[str]
    withheld: list[WithheldCategory]
    basis: str
    keys: list[RecipientKey]
    key_set_fingerprint: str
    aad: dict[str, str]


class KeySetRead(TypedDict):
    """Both parties' keys valid now."""

    keys: list[RecipientKey]
    key_set_fingerprint: str


class EncryptedTo(TypedDict):
    """One key the payload was encrypted to."""

    kid: str
    party: NotRequired[Literal["sender", "recipient"] | None]
    org_id: NotRequired[str | None]


class PassedOn(TypedDict):
    """Where a referral went when its recipient passed it on."""

    referral_id: str
    organisation_id: str
    service_id: str
    service_category: str


class ReferralRead(TypedDict):
    """A referral as a party (or, without the payload, an auditor) sees it."""

    id: str
    version: int
    status: str
    status_reason: NotRequired[str | None]
    sender_org_id: str
    recipient_org_id: str
    service_id: str
    service_category: str
    programme: NotRequired[str | None]
    purpose: str
    urgency: str
    pathway: NotRequired[Literal["international", "national", "local"]]
    based_on: NotRequired[str | None]
    passed_on: NotRequired[PassedOn | None]
    basis: str
    emergency: bool
    consent_ids: list[str]
    override_id: NotRequired[str | None]
    agreement: AgreementRef
    shared_categories: list[str]
    withheld: list[WithheldCategory]
    warnings: NotRequired[list[str]]
    start_after: NotRequired[str | None]
    acknowledge_by: NotRequired[str | None]
    respond_by: NotRequired[str | None]
    overdue: NotRequired[bool]
    created_at: str
    updated_at: str
    acknowledged_at: NotRequired[str | None]
    accepted_at: NotRequired[str | None]
    closed_at: NotRequired[str | None]
    outcome: NotRequired[str | None]
    feedback_score: NotRequired[int | None]
    feedback: NotRequired[dict[str, Any] | None]
    allowed_moves: NotRequired[list[str]]
    payload_mode: NotRequired[Literal["server", "sealed"]]
    payload: NotRequired[dict[str, Any] | None]
    encrypted_to: NotRequired[list[EncryptedTo]]


class NoteRead(TypedDict):
    """A stored note: metadata, and its JWE when asked for (`include=payload`)."""

    id: str
    referral_id: str
    author_org_id: str
    kind: str
    created_at: str
    body: NotRequired[dict[str, Any] | None]


class Problem(TypedDict, total=False):
    """An RFC 9457 problem."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


MODELS_IN_OPENAPI: dict[str, type] = {
    "RecipientKey": RecipientKey,
    "WithheldCategory": WithheldCategory,
    "AgreementRef": AgreementRef,
    "EncryptedTo": EncryptedTo,
    "ReferralPreview": ReferralPreview,
    "KeySetRead": KeySetRead,
    "ReferralRead": ReferralRead,
    "NoteRead": NoteRead,
}
