"""What the consent service answers other services about the basis of a disclosure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
