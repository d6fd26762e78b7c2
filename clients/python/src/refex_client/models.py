"""The API's bodies as typed dictionaries; `tests/test_models.py` checks them against OpenAPI."""

from __future__ import annotations

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


class ReferralRead(TypedDict):
    """A referral as a party sees it (the fields the SDK relies on)."""

    id: str
    version: int
    status: str
    sender_org_id: str
    recipient_org_id: str
    service_id: str
    purpose: str
    basis: str
    shared_categories: list[str]
    withheld: list[WithheldCategory]
    warnings: list[str]
    allowed_moves: list[str]
    payload_mode: Literal["server", "sealed"]
    payload: NotRequired[dict[str, Any] | None]
    created_at: str
    updated_at: str


class NoteRead(TypedDict):
    """A stored note: metadata and its JWE."""

    id: str
    referral_id: str
    author_org_id: str
    kind: str
    created_at: str
    body: dict[str, Any]


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
    "ReferralPreview": ReferralPreview,
    "KeySetRead": KeySetRead,
    "ReferralRead": ReferralRead,
    "NoteRead": NoteRead,
}
