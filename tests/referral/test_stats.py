"""Referral statistics narrowed to one recipient: the SLA figures a partner page links to."""

from __future__ import annotations

from shared.demo import AUDITOR_ORG, HEALTH_PROVIDER_ORG, MENTAL_HEALTH_ORG
from tests.referral.conftest import Exchange, record_consent
from tests.referral.test_referrals_api import REQUESTED, send


class TestStatsOfOneRecipient:
    async def test_recipient_org_id_counts_only_what_that_organisation_received(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        created = await send(exchange)
        assert created.status_code == 201, created.text
        auditor = exchange.as_role("auditor", AUDITOR_ORG)
        clinic = await exchange.referral.get(
            "/referrals/stats",
            params={"recipient_org_id": str(HEALTH_PROVIDER_ORG)},
            headers=auditor,
        )
        other = await exchange.referral.get(
            "/referrals/stats",
            params={"recipient_org_id": str(MENTAL_HEALTH_ORG)},
            headers=auditor,
        )
        assert clinic.status_code == 200, clinic.text
        assert (clinic.json()["total"], other.json()["total"]) == (1, 0)
