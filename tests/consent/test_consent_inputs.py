"""Odd consent inputs are a 422 naming the field, never a 500, and nothing is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select

from services.consent.models import Consent
from services.consent.schemas import LANGUAGE_TAG_MAX, ConsentCreate
from tests.consent.conftest import Callers, consent_body
from tests.consent.test_disclosures import size

LONG_TAG = "en-" + "-".join(["abcdefgh"] * 3) + "-abcdefg"  # 37 characters, well-formed
assert len(LONG_TAG) == 37

REFUSED: dict[str, tuple[dict[str, Any], set[str]]] = {
    "valid_until_already_passed": (
        {"valid_from": None, "valid_until": (datetime.now(UTC) - timedelta(seconds=5)).isoformat()},
        {"valid_until"},
    ),
    "valid_until_in_year_0001": (
        {"valid_from": None, "valid_until": "0001-01-01T00:00:00Z"},
        {"valid_until"},
    ),
    "the_fuzzers_year_0243_repeated_categories_and_long_tag": (
        {
            "valid_from": None,
            "valid_until": "0243-06-30T12:00:00Z",
            "categories": ["contact", "contact", "identity.basic", "contact"],
            "language": LONG_TAG,
        },
        {"valid_until", "language"},
    ),
    "language_tag_of_37_characters": ({"language": LONG_TAG}, {"language"}),
    "valid_until_beyond_what_utc_holds": (
        {"valid_until": "9999-12-31T23:30:00-06:00"},
        {"valid_until"},
    ),
    "valid_from_before_what_utc_holds": (
        {"valid_from": "0001-01-01T00:10:00+01:00"},
        {"valid_from"},
    ),
}


async def consents_stored(client: httpx.AsyncClient) -> int:
    app = client.app  # type: ignore[attr-defined]
    async with app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Consent)) or 0)


def body_with(changes: dict[str, Any]) -> dict[str, Any]:
    body = consent_body(**changes)
    return {key: value for key, value in body.items() if value is not None}


class TestOddInputs:
    @pytest.mark.promise(9)
    @pytest.mark.parametrize("case", sorted(REFUSED))
    async def test_is_a_422_naming_the_field_and_nothing_is_recorded(
        self, client: httpx.AsyncClient, callers: Callers, case: str
    ) -> None:
        changes, fields = REFUSED[case]
        before = await size(client, callers)
        response = await client.post("/consents", json=body_with(changes), headers=callers.host())
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"] == "urn:refex:problem:validation-failed"
        assert {e["loc"][1] for e in problem["errors"]} == fields
        assert all(e["loc"][0] == "body" and len(e["loc"]) == 2 for e in problem["errors"])
        assert await size(client, callers) == before
        assert await consents_stored(client) == 0

    async def test_repeated_categories_are_recorded_once(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        body = consent_body(categories=["contact", "contact", "identity.basic"], language="en")
        response = await client.post("/consents", json=body, headers=callers.host())
        assert response.status_code == 201, response.text
        assert response.json()["categories"] == ["contact", "identity.basic"]

    async def test_a_tag_of_35_characters_and_an_offset_are_kept(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        tag = LONG_TAG[:LANGUAGE_TAG_MAX]
        until = (datetime.now(UTC) + timedelta(days=30)).astimezone(timezone(timedelta(hours=-11)))
        body = consent_body(language=tag, valid_until=until.isoformat())
        response = await client.post("/consents", json=body, headers=callers.host())
        assert response.status_code == 201, response.text
        assert response.json()["language"] == tag
        assert datetime.fromisoformat(response.json()["valid_until"]) == until


offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(timezones=st.none() | offsets)
tags = st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,6}", fullmatch=True)


class TestConsentCreateProperty:
    @given(valid_from=st.none() | moments, valid_until=moments, language=tags)
    def test_an_accepted_consent_fits_its_columns_and_lies_ahead(
        self, valid_from: datetime | None, valid_until: datetime, language: str
    ) -> None:
        body = consent_body(language=language)
        body["valid_from"], body["valid_until"] = valid_from, valid_until
        try:
            consent = ConsentCreate.model_validate(body)
        except ValidationError as error:
            refused = {e["loc"][0] for e in error.errors()}
        else:
            refused = set()
        assert refused <= {"valid_from", "valid_until", "language"}
        if refused:
            return
        assert len(consent.language) <= LANGUAGE_TAG_MAX
        assert consent.valid_until.tzinfo is UTC
        assert consent.valid_until > datetime.now(UTC)
        if consent.valid_from is not None:
            assert consent.valid_from.tzinfo is UTC
            assert consent.valid_from < consent.valid_until
