"""Money: ISO 4217 currencies, decimal amounts (never floats) and their minor units.

Amounts cross every boundary as JSON strings ("125.50") and are read as `Decimal`; a value with
more decimals than its currency's minor unit (CLDR digits, e.g. 2 for EUR, 0 for XOF and JPY,
3 for KWD) is refused rather than rounded. Stored sums are integers of minor units.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from typing import Annotated, Any

import pycountry
from babel.numbers import get_currency_precision
from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from shared.i18n import N_, Message

# ISO 4217 codes that name no money one can be invoiced in.
NOT_MONEY = frozenset({"XXX", "XTS"})
MAX_AMOUNT = Decimal("1000000000000")
# Digits, optionally a point and more digits: no sign, exponent, spaces or separators.
PLAIN_DECIMAL = re.compile(r"[0-9]{1,16}(\.[0-9]{1,8})?")


@cache
def currencies() -> frozenset[str]:
    """The ISO 4217 alphabetic codes in circulation (pycountry's list)."""
    return frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_MONEY


def check_currency(code: str) -> str:
    """Return `code` when it is an ISO 4217 currency code in circulation, else raise saying so."""
    if code not in currencies():
        raise ValueError(
            Message(
                "'{code}' is not an ISO 4217 currency code in circulation (e.g. EUR, NGN, XOF)",
                code=code,
            )
        )
    return code


def minor_digits(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (CLDR)."""
    return int(get_currency_precision(currency))


def _decimal_text(value: Any) -> Any:
    # JSON numbers would arrive as floats and be rounded before we see them: strings only.
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError(N_('amounts are JSON strings such as "125.50", never numbers'))
    if not PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(N_('not a decimal amount; write it like "125.50"'))
    return Decimal(value)


def _plain(value: Decimal) -> str:
    return format(value, "f")


Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal_text),
    Field(gt=0, le=MAX_AMOUNT, examples=["125.50"]),
    PlainSerializer(_plain, return_type=str, when_used="json"),
]
Percentage = Annotated[
    Decimal,
    BeforeValidator(_decimal_text),
    Field(gt=0, le=100, decimal_places=4, examples=["60"]),
    PlainSerializer(_plain, return_type=str, when_used="json"),
]
Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, examples=["EUR"], description="ISO 4217 code."),
    AfterValidator(check_currency),
]


def to_minor(amount: Decimal, currency: str) -> int:
    """The amount in minor units; more decimals than the currency has are refused."""
    digits = minor_digits(currency)
    scaled = amount.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise ValueError(
            Message(
                "{currency} amounts have at most {digits} decimals; {amount} has more",
                currency=currency,
                digits=digits,
                amount=_plain(amount),
            )
        )
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """The decimal amount of `minor` units, with exactly the currency's decimals."""
    digits = minor_digits(currency)
    return Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def money_text(minor: int, currency: str) -> str:
    """'125.50 EUR': the amount as a string with its currency's decimals, then the code."""
    return f"{_plain(from_minor(minor, currency))} {currency}"
