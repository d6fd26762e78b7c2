"""Bodies of a referral's costs, their split, settlements and the cost report."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from services.referral.schemas import Count
from shared.i18n import N_
from shared.money import Amount, Currency, to_minor

STRICT = ConfigDict(extra="forbid")
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
    Field(examples=["161.00"]),
]
ROUNDING = N_(
    "Fixed shares first (each at most what is left), then the percentages share the rest: "
    "their total is rounded half to even to the currency's minor unit and split by largest "
    "remainder (first rule on a tie); caps then limit each share. The shares and "
    "`uncovered_amount` add up to the cost exactly."
)


class Settlement(StrEnum):
    """Where a payer's share stands: pledged → invoiced → paid."""

    PLEDGED = "pledged"
    INVOICED = "invoiced"
    PAID = "paid"


class CostIn(BaseModel):
    """An estimated or actual cost: a decimal string and its ISO 4217 currency."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"amount": "250.00", "currency": "EUR"},
                {"amount": "15000", "currency": "XOF"},
            ]
        },
    )
    amount: Amount = Field(examples=["250.00"])
    currency: Currency

    @model_validator(mode="after")
    def _minor_unit(self) -> CostIn:
        to_minor(self.amount, self.currency)
        return self

    def minor(self) -> int:
        """The amount in the currency's minor units."""
        return to_minor(self.amount, self.currency)


class SettlementChange(BaseModel):
    """Move one payer's share a step on: the provider invoices, the payer pays."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"payer_org_id": "0192f000-0000-7000-8000-000000000001", "status": "invoiced"},
                {"payer_org_id": "0192f000-0000-7000-8000-000000000001", "status": "paid"},
            ]
        },
    )
    payer_org_id: uuid.UUID
    status: Literal[Settlement.INVOICED, Settlement.PAID] = Field(examples=["invoiced"])


class CostShareLineRead(BaseModel):
    """What one payer owes under one rule of the agreement, and its settlement."""

    cost_share_id: uuid.UUID
    payer_org_id: uuid.UUID
    basis: str = Field(examples=["percentage"])
    amount: Money
    currency: str = Field(examples=["EUR"])
    status: Settlement
    invoiced_at: datetime | None
    paid_at: datetime | None


class ReferralCostRead(BaseModel):
    """A referral's cost and its split; organisations and amounts, never personal data."""

    referral_id: uuid.UUID
    programme: str | None
    service_category: str = Field(examples=["health"])
    currency: str = Field(examples=["EUR"])
    estimated_amount: Money | None
    actual_amount: Money | None
    split_of: Literal["estimate", "actual"] = Field(
        description="The split is of the actual cost once recorded, else of the estimate."
    )
    shares: list[CostShareLineRead]
    uncovered_amount: Money = Field(description="What no cost-share rule pays.")
    rounding: str = Field(examples=[ROUNDING])
    version: int
    updated_at: datetime


class CostReportRow(BaseModel):
    """The shares of one programme, donor, payer, currency and settlement status."""

    programme: str | None = Field(examples=["eu-reintegration-2026"])
    donor: str | None = Field(examples=["European Union"])
    payer_org_id: uuid.UUID | None = Field(description="Null on a currency's total.")
    currency: str = Field(examples=["EUR"])
    status: Settlement | None = Field(description="Null on a currency's total.")
    shares: Count = Field(description="Referral cost shares (one per referral and payer).")
    amount: Money | Literal["<5"] = Field(
        description='Hidden ("<5") with its count.', examples=["1234.50", "<5"]
    )


class CostReport(BaseModel):
    """Cost shares per programme, donor, payer, currency and status, with totals by currency."""

    from_date: date = Field(serialization_alias="from", examples=["2026-01-01"])
    to_date: date = Field(serialization_alias="to", examples=["2026-12-31"])
    programme: str | None = None
    host_country: str | None = None
    threshold: int = Field(
        examples=[5],
        description='Rows resting on fewer shares show "<5" for the count and the amount; in '
        "each currency more rows are hidden until at least two are and they add up to 5 or "
        "more shares, so a currency's total cannot give one back.",
    )
    rows: list[CostReportRow]
    totals: list[CostReportRow]
