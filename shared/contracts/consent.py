"""What crosses the consent service's boundary: decisions, disclosures, basis checks, withdrawals.

The consent service validates requests and builds its answers with these models; the referral
service builds its requests and reads the answers with them (ignoring members it does not know).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.i18n import N_
from shared.vocabulary import DataCategory, Purpose, ServiceCategory, WithheldReason

SubjectRef = Annotated[
    str,
    StringConstraints(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$"),
    Field(
        description=(
            "Opaque pseudonym the host office derives for the returnee: 16-128 characters of "
            "A-Z a-z 0-9 _ -. Never a name, e-mail or document number."
        ),
        examples=["rtn_7Qk2vX9mB4sLp0Wz"],
    ),
]
OrgId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"),
    Field(
        description="Organisation id from the directory.",
        examples=["0192f000-0000-7000-8000-000000000002"],
    ),
]
CountryCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    Field(description="ISO 3166-1 alpha-2.", examples=["NG"]),
]
Categories = Annotated[
    list[DataCategory],
    Field(min_length=1, max_length=len(DataCategory), examples=[["identity.basic", "contact"]]),
]

BasisEndReason = Literal[
    "consent-withdrawn", "consent-expired", "override-ended", "override-expired", "unknown-basis"
]


class BasisCheck(BaseModel):
    """The consents (or override) a disclosure rests on, to ask whether they are still in force."""

    model_config = ConfigDict(extra="forbid")

    consent_ids: list[uuid.UUID] = Field(
        max_length=50,
        description="The consents the decision named; may be empty when override_id is set.",
        examples=[["0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"]],
    )
    override_id: uuid.UUID | None = Field(
        None, description="The emergency override the decision named, if any."
    )
    referral_id: uuid.UUID | None = Field(
        None,
        description=(
            "The referral a disclosure was recorded for, if any: the named basis must then be "
            "the one that disclosure rests on."
        ),
        examples=["0192f0c4-8a10-7000-8000-00000000abcd"],
    )


class BasisStatus(BaseModel):
    """Whether the basis is in force now and, if not, why; `until` is when it ends at the latest."""

    model_config = ConfigDict(extra="forbid")

    in_force: bool = Field(examples=[True])
    reason: BasisEndReason | None = Field(None, examples=[None])
    until: datetime | None = Field(
        None,
        description="The earliest end of the named consents' validity or the override.",
        examples=["2027-05-25T10:00:00Z"],
    )


def unique_categories(categories: list[DataCategory]) -> list[DataCategory]:
    """The categories in their first order, each once."""
    return list(dict.fromkeys(categories))


class DecisionRequest(BaseModel):
    """What a sender wants to share, with whom and why."""

    model_config = ConfigDict(extra="forbid")

    subject_ref: SubjectRef
    sender_org_id: OrgId | None = Field(
        None, description="The sending organisation; host offices may omit it (their own)."
    )
    recipient_org_id: OrgId
    recipient_country: CountryCode | None = Field(
        None, description="Country of the recipient, for consents granted to a category there."
    )
    service_category: ServiceCategory = Field(examples=["health"])
    purpose: Purpose = Field(examples=["referral"])
    requested_categories: Categories


class Basis(StrEnum):
    """What a disclosure rests on."""

    CONSENT = "consent"
    EMERGENCY = "emergency"
    NONE = "none"


class Decision(BaseModel):
    """Which categories may go, on which basis; refusal is the default."""

    model_config = ConfigDict(extra="forbid")

    basis: Basis = Field(examples=["consent"])
    permitted_categories: list[DataCategory] = Field(examples=[["identity.basic"]])
    withheld: dict[DataCategory, WithheldReason] = Field(examples=[{"contact": "no_consent"}])
    consent_ids: list[uuid.UUID] = Field(examples=[["0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"]])
    override_id: uuid.UUID | None = None
    decided_at: datetime


class DisclosureCreate(BaseModel):
    """A disclosure a referral made, to record in the ledger."""

    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID = Field(examples=["0192f0c4-8a10-7000-8000-00000000abcd"])
    subject_ref: SubjectRef
    sender_org_id: OrgId
    recipient_org_id: OrgId
    categories: Categories
    basis: Literal["consent", "emergency"] = Field(examples=["consent"])
    consent_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    override_id: uuid.UUID | None = None
    purpose: Purpose | None = Field(
        None, description="The referral's purpose; when given, every consent must be for it."
    )
    service_category: ServiceCategory | None = Field(
        None,
        description="The recipient service's category; needed for consents granted to a category.",
        examples=["health"],
    )
    recipient_country: CountryCode | None = Field(
        None, description="The recipient's country; needed for consents granted to a category."
    )

    @model_validator(mode="after")
    def _basis_needs_its_ids(self) -> DisclosureCreate:
        self.categories = unique_categories(self.categories)
        if self.basis == "consent" and not self.consent_ids:
            raise ValueError(N_("basis 'consent' needs the consent_ids the decision returned"))
        if self.basis == "emergency" and self.override_id is None:
            raise ValueError(N_("basis 'emergency' needs the override_id the decision returned"))
        return self


class DisclosureRecorded(BaseModel):
    """Where the disclosure sits in the ledger."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    ledger_index: int = Field(examples=[42])
    recorded_at: datetime


class WithdrawalNotice(BaseModel):
    """Sent by the consent service to the referral service when a returnee withdraws consent."""

    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID
    consent_id: uuid.UUID
    subject_ref: SubjectRef
    sender_org_id: OrgId | None = Field(None, description="The organisation that recorded it.")
    withdrawn_at: datetime
    reason: str | None = Field(None, max_length=200, examples=["returnee_request"])


class WithdrawalResult(BaseModel):
    """What a withdrawal cancelled."""

    model_config = ConfigDict(extra="forbid")

    cancelled_referral_ids: list[uuid.UUID]
