"""A second open referral of one returnee is refused, within the sending office only."""

from __future__ import annotations

from typing import Any

import pytest

from services.directory.seed import demo_id
from shared.demo import HOST_OFFICE_ORG, SECOND_HOST_OFFICE_ORG
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

# A health service that any host office may refer to (Berlin and Rome both).
THIES_SOCIAL = demo_id("org:thies-social")
THIES_HEALTH = demo_id(f"service:{THIES_SOCIAL}:0")
REQUESTED = ["identity.basic", "contact", "health.physical"]


async def send_as(exchange: Exchange, office: object) -> Any:
    await record_consent(exchange, REQUESTED, org=THIES_SOCIAL, office=office)
    return await exchange.referral.post(
        "/referrals",
        json={
            "service_id": str(THIES_HEALTH),
            "subject_ref": SUBJECT,
            "requested_categories": REQUESTED,
            "casefile": CASEFILE,
        },
        headers=exchange.as_role("host_office", office),
    )


class TestDuplicateScope:
    @pytest.mark.promise(9)
    async def test_another_offices_open_referral_is_neither_revealed_nor_blocking(
        self, exchange: Exchange
    ) -> None:
        berlin = await send_as(exchange, HOST_OFFICE_ORG)
        assert berlin.status_code == 201, berlin.text
        berlin_id = berlin.json()["id"]
        rome = await send_as(exchange, SECOND_HOST_OFFICE_ORG)
        assert rome.status_code == 201, rome.text
        assert berlin_id not in rome.text
        again = await send_as(exchange, SECOND_HOST_OFFICE_ORG)
        assert again.status_code == 409
        problem = again.json()
        assert problem["type"] == "urn:refex:problem:duplicate-open-referral"
        assert problem["existing_referral_id"] == rome.json()["id"]
        assert berlin_id not in again.text

    async def test_the_same_office_gets_its_own_open_referral_back(
        self, exchange: Exchange
    ) -> None:
        first = await send_as(exchange, HOST_OFFICE_ORG)
        again = await send_as(exchange, HOST_OFFICE_ORG)
        assert again.status_code == 409
        assert again.json()["existing_referral_id"] == first.json()["id"]
        assert first.json()["id"] in again.json()["detail"]
