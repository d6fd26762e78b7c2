"""Request bodies of the cost-sharing rules (the read model is the contract CostShareRead)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from services.directory.schemas import Texts
from shared.contracts.directory import CostShareBasis
from shared.contracts.directory import CostShareRead as CostShareRead
from shared.i18n import N_, Message
from shared.money import Amount, Currency, Percentage, to_minor
from shared.vocabulary import ServiceCategory

COVERS_EXAMPLE = {"en": "Consultations and medication", "fr": "Consultations et médicaments"}
PAYER_EXAMPLE = "0192f000-0000-7000-8000-000000000001"
CREATE_EXAMPLES: list[JsonValue] = [
    {
        "service_category": "health",
        "payer_org_id": PAYER_EXAMPLE,
        "basis": "percentage",
        "percentage": "70",
        "cap": "400.00",
        "currency": "EUR",
        "covers": {**COVERS_EXAMPLE},
    },
    {
        "service_category": "health",
        "payer_org_id": PAYER_EXAMPLE,
        "basis": "fixed",
        "fixed_amount": "20.00",
        "currency": "EUR",
        "covers": {"en": "Registration", "fr": "Inscription"},
    },
]


def check_terms(
    *,
    basis: str,
    percentage: Decimal | None,
    fixed_amount: Decimal | None,
    cap: Decimal | None,
    currency: str,
) -> None:
    """Refuse terms that do not fit the basis, or amounts finer than the currency's minor unit."""
    if basis == "percentage" and (percentage is None or fixed_amount is not None):
        raise ValueError(N_("a percentage share gives 'percentage' and no 'fixed_amount'"))
    if basis == "fixed" and (fixed_amount is None or percentage is not None or cap is not None):
        raise ValueError(
            N_("a fixed share gives 'fixed_amount' only: no 'percentage', and no 'cap'")
        )
    for amount in (fixed_amount, cap):
        if amount is not None:
            to_minor(amount, currency)


class CostShareCreate(BaseModel):
    """A new rule: who pays which share of one service category of the agreement."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": CREATE_EXAMPLES})
    id: uuid.UUID | None = None
    service_category: ServiceCategory = Field(examples=["health"])
    payer_org_id: uuid.UUID = Field(examples=[PAYER_EXAMPLE])
    basis: CostShareBasis = Field(examples=["percentage"])
    percentage: Percentage | None = Field(
        None,
        description="Of what the category's fixed amounts leave; the category's add up "
        "to 100 at most.",
    )
    fixed_amount: Amount | None = Field(None, examples=["25.00"])
    cap: Amount | None = Field(None, examples=["400.00"])
    currency: Currency
    covers: Texts = Field(
        min_length=1,
        examples=[COVERS_EXAMPLE],
        description="What the share pays for, by language. Services, never a person.",
    )

    @model_validator(mode="after")
    def _terms(self) -> CostShareCreate:
        check_terms(
            basis=self.basis,
            percentage=self.percentage,
            fixed_amount=self.fixed_amount,
            cap=self.cap,
            currency=self.currency,
        )
        return self


class CostShareUpdate(BaseModel):
    """Correct a rule's terms or what it covers; null removes the cap."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"percentage": "60", "cap": None}, {"cap": "500.00"}]},
    )
    percentage: Percentage | None = None
    fixed_amount: Amount | None = None
    cap: Amount | None = Field(None, examples=["500.00"])
    currency: Currency | None = None
    covers: Texts | None = Field(None, min_length=1, examples=[COVERS_EXAMPLE])

    @model_validator(mode="after")
    def _something(self) -> CostShareUpdate:
        if not self.model_fields_set:
            raise ValueError(Message("give at least one field to change"))
        return self
