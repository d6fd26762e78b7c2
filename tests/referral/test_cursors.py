"""Malformed paging input on the referral lists is a 422 naming the parameter, never a 500."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest

from shared.demo import HOST_OFFICE_ORG
from shared.pagination import encode_cursor
from tests.referral.conftest import Exchange

REFERRAL_ID = str(uuid.uuid4())
# Each is a cursor this service never issues; none may reach the database.
FORGED_KEYS: dict[str, Any] = {
    "naive-datetime": ["2026-11-25T08:00:00", REFERRAL_ID],
    "id-not-a-string": ["2026-11-25T08:00:00+00:00", 5],
    "id-not-a-uuid": ["2026-11-25T08:00:00+00:00", "not-an-id"],
    "time-not-a-string": [1, REFERRAL_ID],
    "time-not-a-date": ["yesterday", REFERRAL_ID],
    "beyond-year-9999-in-utc": ["9999-12-31T23:59:59-14:00", REFERRAL_ID],
    "before-year-1-in-utc": ["0001-01-01T00:00:00+14:00", REFERRAL_ID],
    "empty-list": [],
    "too-short": ["2026-11-25T08:00:00+00:00"],
    "too-long": ["2026-11-25T08:00:00+00:00", REFERRAL_ID, "extra"],
    "nested": [["2026-11-25T08:00:00+00:00"], [REFERRAL_ID]],
}
FORGED_RAW = {
    "not-base64": "!!!*%%",
    "not-ascii": "é" * 8,
    "not-json": base64.urlsafe_b64encode(b"nope{").decode(),
    "json-object": base64.urlsafe_b64encode(orjson.dumps({"k": 1})).decode(),
    "huge-integer": base64.urlsafe_b64encode(b"[" + b"9" * 300 + b"]").decode(),
}
FORGED = {name: encode_cursor(key) for name, key in FORGED_KEYS.items()} | FORGED_RAW


def names_cursor(response: Any) -> bool:
    """True when the answer is the 422 that names the cursor parameter."""
    if response.status_code != 422:
        return False
    problem = response.json()
    return bool(
        problem["type"] == "urn:refex:problem:invalid-cursor"
        and "'cursor'" in problem["detail"]
        and problem["errors"][0]["loc"] == ["query", "cursor"]
    )


class TestMalformedCursors:
    @pytest.mark.promise(9)
    @pytest.mark.parametrize("path", ["/referrals", "/referrals/overdue"])
    async def test_every_forged_cursor_is_a_422_naming_the_parameter(
        self, exchange: Exchange, path: str
    ) -> None:
        host = exchange.as_role("host_office", HOST_OFFICE_ORG)
        wrong = {}
        for name, cursor in FORGED.items():
            response = await exchange.referral.get(path, params={"cursor": cursor}, headers=host)
            if not names_cursor(response):
                wrong[name] = response.status_code
        assert wrong == {}

    async def test_an_issued_cursor_still_pages(self, exchange: Exchange) -> None:
        host = exchange.as_role("host_office", HOST_OFFICE_ORG)
        cursor = encode_cursor(["2026-11-25T08:00:00+01:00", REFERRAL_ID])
        response = await exchange.referral.get(
            "/referrals", params={"cursor": cursor}, headers=host
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}


class TestUpdatedSince:
    @pytest.mark.promise(9)
    @pytest.mark.parametrize(
        "value",
        ["2026-11-25T08:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
        ids=["naive", "before-year-1-in-utc", "beyond-year-9999-in-utc"],
    )
    async def test_a_time_without_zone_or_out_of_range_is_a_422_naming_it(
        self, exchange: Exchange, value: str
    ) -> None:
        response = await exchange.referral.get(
            "/referrals",
            params={"updated_since": value},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"] == "urn:refex:problem:validation-failed"
        assert [e["loc"] for e in problem["errors"]] == [["query", "updated_since"]]
        assert value not in response.text
