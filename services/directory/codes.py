"""ISO code checks (3166-1 countries, 3166-2 admin areas, 639-1 languages) and search text."""

from __future__ import annotations

import unicodedata
from functools import cache

import pycountry

from shared.i18n import Message


@cache
def _countries() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


@cache
def _subdivisions() -> frozenset[str]:
    return frozenset(s.code for s in pycountry.subdivisions)


@cache
def _languages() -> frozenset[str]:
    return frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def check_country(code: str) -> str:
    """Return `code` when it is an ISO 3166-1 alpha-2 country code, else raise saying so."""
    if code not in _countries():
        raise ValueError(
            Message(
                "'{code}' is not an ISO 3166-1 alpha-2 country code (e.g. NG, SN, IQ)", code=code
            )
        )
    return code


def check_admin_area(code: str, country: str | None = None) -> str:
    """Return `code` when it is an ISO 3166-2 subdivision (of `country`, if given)."""
    if code not in _subdivisions():
        raise ValueError(
            Message("'{code}' is not an ISO 3166-2 admin-area code (e.g. NG-LA)", code=code)
        )
    if country and not code.startswith(f"{country}-"):
        raise ValueError(
            Message("admin area '{code}' is not in country {country}", code=code, country=country)
        )
    return code


def check_language(code: str) -> str:
    """Return `code` when it is an ISO 639-1 language code."""
    if code not in _languages():
        raise ValueError(
            Message("'{code}' is not an ISO 639-1 language code (e.g. en, fr, ar)", code=code)
        )
    return code


def search_text(*parts: str) -> str:
    """Normalise text so both backends' tokenisers see the same lower-case, unaccented words."""
    joined = " ".join(p for p in parts if p)
    decomposed = unicodedata.normalize("NFKD", joined.casefold())
    kept = (ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch))
    return " ".join("".join(kept).split())


MAX_QUERY_TERMS = 8


def search_terms(query: str) -> list[str]:
    """Split a free-text query into normalised word terms."""
    return search_text(query).split()[:MAX_QUERY_TERMS]


def list_key(values: list[str]) -> str:
    """Encode a list for substring matching: ',a,b,' so ',a,' finds exactly a."""
    return "," + "".join(f"{v}," for v in values)
