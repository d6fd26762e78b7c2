"""Every referral lists the key ids its payload was encrypted to, and whose they are."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update

from services.referral.models import Referral
from shared.crypto import recipient_kids
from shared.demo import AUDITOR_ORG, DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

REQUESTED = ["identity.basic", "contact", "health.physical"]


async def create(exchange: Exchange) -> dict[str, Any]:
    await record_consent(exchange, REQUESTED)
    response = await exchange.referral.post(
        "/referrals",
        json={
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": SUBJECT,
            "requested_categories": REQUESTED,
            "casefile": CASEFILE,
        },
        headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def directory_kids(exchange: Exchange, org: uuid.UUID) -> list[str]:
    response = await exchange.directory.get(
        f"/organisations/{org}/jwks", headers=exchange.as_role("host_office", HOST_OFFICE_ORG)
    )
    assert response.status_code == 200, response.text
    return [key["kid"] for key in response.json()["keys"]]


async def read_as(exchange: Exchange, referral_id: str, role: str, org: object) -> Any:
    response = await exchange.referral.get(
        f"/referrals/{referral_id}", headers=exchange.as_role(role, org)
    )
    assert response.status_code == 200, response.text
    return response.json()


class TestEncryptedTo:
    @pytest.mark.promise(7)
    async def test_each_jwe_recipient_is_listed_with_the_party_holding_its_key(
        self, exchange: Exchange
    ) -> None:
        created = await create(exchange)
        expected = [
            {"kid": kid, "party": "recipient", "org_id": str(HEALTH_PROVIDER_ORG)}
            for kid in await directory_kids(exchange, HEALTH_PROVIDER_ORG)
        ] + [
            {"kid": kid, "party": "sender", "org_id": str(HOST_OFFICE_ORG)}
            for kid in await directory_kids(exchange, HOST_OFFICE_ORG)
        ]
        assert created["encrypted_to"] == expected
        assert [k["kid"] for k in expected] == recipient_kids(created["payload"])

    @pytest.mark.promise(7)
    async def test_parties_and_auditors_see_the_key_ids_but_auditors_no_payload(
        self, exchange: Exchange
    ) -> None:
        created = await create(exchange)
        provider = await read_as(exchange, created["id"], "provider", HEALTH_PROVIDER_ORG)
        auditor = await read_as(exchange, created["id"], "auditor", AUDITOR_ORG)
        assert provider["encrypted_to"] == auditor["encrypted_to"] == created["encrypted_to"]
        assert auditor["payload"] is None
        listed = await exchange.referral.get(
            "/referrals", headers=exchange.as_role("auditor", AUDITOR_ORG)
        )
        assert listed.json()["items"][0]["encrypted_to"] == created["encrypted_to"]

    @pytest.mark.promise(7)
    async def test_the_fhir_view_names_each_key_and_the_organisation_holding_it(
        self, exchange: Exchange
    ) -> None:
        created = await create(exchange)
        response = await exchange.referral.get(
            f"/referrals/{created['id']}/fhir", headers=exchange.as_role("auditor", AUDITOR_ORG)
        )
        extensions = response.json()["entry"][0]["resource"]["extension"]
        assert [
            (e["url"], e["valueIdentifier"]["value"], e["valueIdentifier"]["assigner"])
            for e in extensions
        ] == [
            (
                "urn:refex:encrypted-to",
                key["kid"],
                {
                    "type": "Organization",
                    "identifier": {"system": "urn:refex:organisation", "value": key["org_id"]},
                },
            )
            for key in created["encrypted_to"]
        ]

    async def test_referrals_made_before_the_owners_were_kept_list_kids_without_party(
        self, exchange: Exchange
    ) -> None:
        created = await create(exchange)
        async with exchange.referral_app.state.db.sessionmaker() as session, session.begin():
            await session.execute(update(Referral).values(sender_kids=None))
        read = await read_as(exchange, created["id"], "host_office", HOST_OFFICE_ORG)
        assert read["encrypted_to"] == [
            {"kid": key["kid"], "party": None, "org_id": None} for key in created["encrypted_to"]
        ]
