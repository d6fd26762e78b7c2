"""Recording, reading and withdrawing consents."""

from __future__ import annotations

from typing import Any

import httpx

from tests.consent.conftest import (
    AUDITOR_ORG,
    CLINIC_ORG,
    HOST_ORG,
    MHP_ORG,
    OTHER_HOST_ORG,
    SUBJECT,
    Callers,
    consent_body,
    decision_body,
    grant,
)

PROBLEM = "application/problem+json"
NOT_PSEUDONYMS = [
    "short_ref_12",
    "Ada Lovelace Obi 1990",
    "ada.obi@example.org1234",
    "x" * 129,
    "rtn_7Qk2vX9mB4sLp0W\u00e9",
]
INVALID_FIELDS: list[tuple[str, Any]] = [
    ("categories", ["identity.basic", "shoe_size"]),
    ("categories", []),
    ("purpose", "marketing"),
    ("grantor", "neighbour"),
    ("evidence", {"method": "written", "form_sha256": "not-a-hash"}),
    ("language", "English please"),
    ("valid_until", "2020-01-01T00:00:00Z"),
    ("valid_until", "2030-01-01T00:00:00"),
    ("favourite_colour", "blue"),
]


async def ledger_size(client: httpx.AsyncClient, callers: Callers) -> int:
    response = await client.post("/ledger/tree-head", headers=callers.auditor())
    assert response.status_code == 201
    size: int = response.json()["tree_size"]
    return size


class TestRecordConsent:
    async def test_a_consent_is_recorded_with_the_recorder_from_the_token(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        assert consent["subject_ref"] == SUBJECT
        assert consent["recorded_by_org"] == HOST_ORG
        assert consent["recorded_by_client"] == "host-client"
        assert consent["status"] == "active"
        assert consent["grantee"] == {"kind": "organisation", "org_id": CLINIC_ORG}
        assert consent["ledger_index"] == 0

    async def test_a_category_in_a_country_can_be_the_grantee(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        grantee = {"kind": "service_category", "service_category": "health", "country": "NG"}
        consent = await grant(client, callers, grantee=grantee)
        assert consent["grantee"] == grantee

    async def test_anything_but_a_pseudonym_is_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        for subject_ref in NOT_PSEUDONYMS:
            response = await client.post(
                "/consents", json=consent_body(subject_ref=subject_ref), headers=callers.host()
            )
            assert response.status_code == 422
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["errors"][0]["loc"] == ["body", "subject_ref"]
            assert subject_ref not in response.text
        assert await ledger_size(client, callers) == 0

    async def test_invalid_fields_are_refused_and_nothing_is_stored(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        for field, value in INVALID_FIELDS:
            response = await client.post(
                "/consents", json=consent_body(**{field: value}), headers=callers.host()
            )
            assert response.status_code == 422, field
        assert await ledger_size(client, callers) == 0

    async def test_only_senders_record_consents(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        for role in ("auditor", "service", "mental_health_professional", "admin"):
            headers = callers.minter.headers(roles=[role], org=HOST_ORG)
            response = await client.post("/consents", json=consent_body(), headers=headers)
            assert response.status_code == 403
        assert (await client.post("/consents", json=consent_body())).status_code == 401
        assert await ledger_size(client, callers) == 0


class TestConsentsOfOriginPartners:
    async def test_a_provider_records_a_consent_naming_a_domestic_partner(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        body = consent_body(grantee={"kind": "organisation", "org_id": MHP_ORG})
        response = await client.post("/consents", json=body, headers=callers.provider())
        assert response.status_code == 201, response.text
        consent = response.json()
        assert consent["recorded_by_org"] == CLINIC_ORG
        assert consent["grantee"] == {"kind": "organisation", "org_id": MHP_ORG}

    async def test_it_counts_for_the_providers_referrals_only(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        body = consent_body(grantee={"kind": "organisation", "org_id": MHP_ORG})
        await client.post("/consents", json=body, headers=callers.provider())
        decision = decision_body(
            recipient_org_id=MHP_ORG, service_category="mental_health_psychosocial"
        )
        for sender, basis in ((CLINIC_ORG, "consent"), (HOST_ORG, "none")):
            response = await client.post(
                "/decisions", json={**decision, "sender_org_id": sender}, headers=callers.service()
            )
            assert response.status_code == 200, response.text
            assert response.json()["basis"] == basis, sender


class TestReadConsent:
    async def test_the_recording_organisation_and_auditors_can_read_it(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        own = await client.get(f"/consents/{consent['id']}", headers=callers.host())
        audited = await client.get(f"/consents/{consent['id']}", headers=callers.auditor())
        assert own.status_code == audited.status_code == 200
        assert own.json() == audited.json() == consent

    async def test_other_organisations_get_404(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        other = await client.get(f"/consents/{consent['id']}", headers=callers.host(OTHER_HOST_ORG))
        assert other.status_code == 404
        assert other.json()["type"] == "urn:refex:problem:consent-not-found"
        provider = await client.get(f"/consents/{consent['id']}", headers=callers.provider())
        assert provider.status_code == 404
        assert AUDITOR_ORG not in other.text
        unknown = await client.get(
            "/consents/0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d", headers=callers.host()
        )
        assert unknown.status_code == 404


class TestWithdraw:
    async def test_withdrawal_takes_effect_at_once(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        response = await client.post(
            f"/consents/{consent['id']}/withdraw",
            json={"reason": "returnee_request"},
            headers=callers.host(),
        )
        assert response.status_code == 200
        assert response.json()["status"] == "withdrawn"
        assert response.json()["withdrawal_reason"] == "returnee_request"
        assert await ledger_size(client, callers) == 2

    async def test_withdrawing_twice_is_409_and_no_second_event(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        path = f"/consents/{consent['id']}/withdraw"
        first = await client.post(path, json={"reason": "other"}, headers=callers.host())
        second = await client.post(path, json={"reason": "other"}, headers=callers.host())
        assert first.status_code == 200
        assert second.status_code == 409
        assert second.json()["type"] == "urn:refex:problem:consent-already-withdrawn"
        assert await ledger_size(client, callers) == 2
        stored = await client.get(f"/consents/{consent['id']}", headers=callers.host())
        assert stored.json()["withdrawn_at"] == first.json()["withdrawn_at"]

    async def test_others_and_free_text_reasons_cannot_withdraw(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        response = await client.post(
            f"/consents/{consent['id']}/withdraw",
            json={"reason": "other"},
            headers=callers.host(OTHER_HOST_ORG),
        )
        assert response.status_code == 404
        free_text = await client.post(
            f"/consents/{consent['id']}/withdraw",
            json={"reason": "she moved to Lagos with her brother"},
            headers=callers.host(),
        )
        assert free_text.status_code == 422
        assert "Lagos" not in free_text.text
        stored = await client.get(f"/consents/{consent['id']}", headers=callers.host())
        assert stored.json()["status"] == "active"
