"""Local and national referrals: partners in the country of origin send to each other."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from services.directory.seed import demo_id
from services.referral.models import Referral
from shared.client import open_payload
from shared.crypto import CryptoError
from shared.demo import (
    ADMIN_ORG,
    AUDITOR_ORG,
    COORDINATOR_ORG,
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
)
from tests.referral.conftest import CASEFILE, Exchange, record_consent

CLINIC_SUBJECT = "lrc-2026-local-subject-0001"
COMMITTEE_SUBJECT = "ngc-2026-national-subject-01"
EDO_RECEPTION = demo_id(f"service:{demo_id('org:edo-returnees')}:0")
EDO_SKILLS = demo_id("org:edo-skills")
EDO_TVET = demo_id(f"service:{EDO_SKILLS}:0")


async def send_as(
    exchange: Exchange,
    role: str,
    org: object,
    *,
    service: object,
    subject: str,
    requested: list[str],
) -> Any:
    return await exchange.referral.post(
        "/referrals",
        headers=exchange.as_role(role, org),
        json={
            "service_id": str(service),
            "subject_ref": subject,
            "requested_categories": requested,
            "casefile": CASEFILE,
        },
    )


async def clinic_consent(exchange: Exchange, categories: list[str], *, to: object) -> str:
    """The Lagos clinic records the returnee's consent for `categories` to go to `to`."""
    return await record_consent(
        exchange,
        categories,
        subject=CLINIC_SUBJECT,
        org=to,
        office=HEALTH_PROVIDER_ORG,
        role="provider",
    )


async def stored(exchange: Exchange) -> int:
    async with exchange.referral_app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Referral)) or 0)


class TestLocalReferral:
    async def test_a_provider_sends_to_a_provider_of_its_area_under_its_local_agreement(
        self, exchange: Exchange
    ) -> None:
        await clinic_consent(
            exchange,
            ["identity.basic", "contact", "health.mental", "health.physical"],
            to=MENTAL_HEALTH_ORG,
        )
        response = await send_as(
            exchange,
            "provider",
            HEALTH_PROVIDER_ORG,
            service=DEMO_MENTAL_HEALTH_SERVICE,
            subject=CLINIC_SUBJECT,
            requested=["identity.basic", "contact", "health.mental", "health.physical"],
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["pathway"] == "local"
        # Reports count it in its country of origin, under no host country.
        assert body["host_country"] is None and body["origin_country"] == "NG"
        assert body["sender_org_id"] == str(HEALTH_PROVIDER_ORG)
        assert body["recipient_org_id"] == str(MENTAL_HEALTH_ORG)
        # requested ∩ agreement (no health.physical) ∩ consent
        assert body["shared_categories"] == ["contact", "health.mental", "identity.basic"]
        withheld = {w["category"]: w["reason"] for w in body["withheld"]}
        assert withheld == {"health.physical": "not_in_sop", "protection": "not_requested"}
        for org in (MENTAL_HEALTH_ORG, HEALTH_PROVIDER_ORG):
            casefile = open_payload(body, exchange.private_key(org))
            assert set(casefile) == {"schema_version", "identity_basic", "contact", "health_mental"}
        with pytest.raises(CryptoError):
            open_payload(body, exchange.private_key(HOST_OFFICE_ORG))

    async def test_both_sides_follow_it_the_recipient_acknowledges_the_sender_cancels(
        self, exchange: Exchange
    ) -> None:
        await clinic_consent(exchange, ["identity.basic", "contact"], to=MENTAL_HEALTH_ORG)
        created = await send_as(
            exchange,
            "provider",
            HEALTH_PROVIDER_ORG,
            service=DEMO_MENTAL_HEALTH_SERVICE,
            subject=CLINIC_SUBJECT,
            requested=["identity.basic", "contact"],
        )
        referral_id = created.json()["id"]
        sent = await exchange.referral.get(
            "/referrals",
            params={"box": "sent"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert [r["id"] for r in sent.json()["items"]] == [referral_id]
        inbox = await exchange.referral.get(
            "/referrals",
            params={"box": "received"},
            headers=exchange.as_role("provider", MENTAL_HEALTH_ORG),
        )
        assert [r["id"] for r in inbox.json()["items"]] == [referral_id]
        # The clinic is the sender here: acknowledging is the recipient's move, not its own.
        own_move = await exchange.referral.post(
            f"/referrals/{referral_id}/status",
            json={"status": "received"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert own_move.status_code == 409
        acknowledged = await exchange.referral.post(
            f"/referrals/{referral_id}/status",
            json={"status": "received"},
            headers=exchange.as_role("provider", MENTAL_HEALTH_ORG),
        )
        assert acknowledged.status_code == 200, acknowledged.text
        cancelled = await exchange.referral.post(
            f"/referrals/{referral_id}/status",
            json={"status": "cancelled", "reason": "no-longer-needed"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"

    async def test_a_host_offices_consent_does_not_cover_the_providers_sending(
        self, exchange: Exchange
    ) -> None:
        # Berlin recorded a consent naming the NGO, but the clinic sends: a consent counts only
        # for referrals of the organisation that recorded it.
        await record_consent(
            exchange, ["identity.basic", "contact"], subject=CLINIC_SUBJECT, org=MENTAL_HEALTH_ORG
        )
        response = await send_as(
            exchange,
            "provider",
            HEALTH_PROVIDER_ORG,
            service=DEMO_MENTAL_HEALTH_SERVICE,
            subject=CLINIC_SUBJECT,
            requested=["identity.basic", "contact"],
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith(":nothing-to-share")
        assert await stored(exchange) == 0


class TestNationalReferral:
    async def test_a_coordinating_body_sends_to_a_member_provider(self, exchange: Exchange) -> None:
        await record_consent(
            exchange,
            ["identity.basic", "contact", "health.physical"],
            subject=COMMITTEE_SUBJECT,
            org=HEALTH_PROVIDER_ORG,
            office=COORDINATOR_ORG,
            role="coordinator",
        )
        response = await send_as(
            exchange,
            "coordinator",
            COORDINATOR_ORG,
            service=DEMO_HEALTH_SERVICE,
            subject=COMMITTEE_SUBJECT,
            requested=["identity.basic", "contact", "health.physical", "health.mental"],
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["pathway"] == "national"
        assert body["shared_categories"] == ["contact", "health.physical", "identity.basic"]
        for org in (HEALTH_PROVIDER_ORG, COORDINATOR_ORG):
            assert "health_physical" in open_payload(body, exchange.private_key(org))
        read = await exchange.referral.get(
            f"/referrals/{body['id']}", headers=exchange.as_role("coordinator", COORDINATOR_ORG)
        )
        assert read.status_code == 200
        assert "cancelled" in read.json()["allowed_moves"]

    async def test_a_provider_refers_across_areas_of_its_country_under_a_national_agreement(
        self, exchange: Exchange
    ) -> None:
        await clinic_consent(exchange, ["identity.basic", "contact", "skills"], to=EDO_SKILLS)
        response = await send_as(
            exchange,
            "provider",
            HEALTH_PROVIDER_ORG,
            service=EDO_TVET,
            subject=CLINIC_SUBJECT,
            requested=["identity.basic", "contact", "health.physical"],
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["pathway"] == "national"  # Lagos to Edo: one country, two areas
        assert body["shared_categories"] == ["contact", "identity.basic"]


class TestWhoMaySend:
    async def test_a_provider_without_an_agreement_gets_a_problem_saying_what_to_do(
        self, exchange: Exchange
    ) -> None:
        # Open 'any host office' agreements cover this service; the clinic is no host office.
        await clinic_consent(
            exchange, ["identity.basic", "contact"], to=demo_id("org:edo-returnees")
        )
        response = await send_as(
            exchange,
            "provider",
            HEALTH_PROVIDER_ORG,
            service=EDO_RECEPTION,
            subject=CLINIC_SUBJECT,
            requested=["identity.basic", "contact"],
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith(":no-agreement")
        assert "national or local agreement" in problem["detail"]
        assert await stored(exchange) == 0

    @pytest.mark.parametrize(
        ("role", "org"),
        [
            ("auditor", AUDITOR_ORG),
            ("admin", ADMIN_ORG),
            ("mental_health_professional", MENTAL_HEALTH_ORG),
        ],
    )
    async def test_roles_that_do_not_send_are_refused(
        self, exchange: Exchange, role: str, org: object
    ) -> None:
        response = await send_as(
            exchange,
            role,
            org,
            service=DEMO_MENTAL_HEALTH_SERVICE,
            subject=CLINIC_SUBJECT,
            requested=["identity.basic"],
        )
        assert response.status_code == 403
        assert await stored(exchange) == 0

    async def test_a_provider_may_not_send_on_another_organisations_behalf(
        self, exchange: Exchange
    ) -> None:
        # The NGO holds no agreement as the sender to the clinic: its token's organisation is
        # what counts, whatever agreements the clinic holds.
        await record_consent(
            exchange,
            ["identity.basic"],
            subject=CLINIC_SUBJECT,
            org=HEALTH_PROVIDER_ORG,
            office=MENTAL_HEALTH_ORG,
            role="provider",
        )
        response = await send_as(
            exchange,
            "provider",
            MENTAL_HEALTH_ORG,
            service=DEMO_HEALTH_SERVICE,
            subject=CLINIC_SUBJECT,
            requested=["identity.basic"],
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith(":no-agreement")


class TestConsentsOfOriginPartners:
    async def test_a_provider_reads_and_withdraws_only_the_consents_it_recorded(
        self, exchange: Exchange
    ) -> None:
        mine = await clinic_consent(exchange, ["identity.basic"], to=MENTAL_HEALTH_ORG)
        berlins = await record_consent(exchange, ["identity.basic"], subject=CLINIC_SUBJECT)
        clinic = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        assert (await exchange.consent.get(f"/consents/{mine}", headers=clinic)).status_code == 200
        assert (await exchange.consent.get(f"/consents/{berlins}", headers=clinic)).status_code == (
            404
        )
        refused = await exchange.consent.post(
            f"/consents/{berlins}/withdraw", json={"reason": "other"}, headers=clinic
        )
        assert refused.status_code == 404
        withdrawn = await exchange.consent.post(
            f"/consents/{mine}/withdraw", json={"reason": "returnee_request"}, headers=clinic
        )
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "withdrawn"
