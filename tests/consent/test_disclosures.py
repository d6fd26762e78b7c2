"""POST /disclosures (idempotent per referral) and GET /subjects/{ref}/disclosures."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.consent.conftest import (
    CLINIC_ORG,
    HOST_ORG,
    OTHER_HOST_ORG,
    OTHER_SUBJECT,
    SUBJECT,
    Callers,
    grant,
)


def disclosure_body(consent_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "referral_id": str(uuid.uuid4()),
        "subject_ref": SUBJECT,
        "sender_org_id": HOST_ORG,
        "recipient_org_id": CLINIC_ORG,
        "categories": ["identity.basic", "contact"],
        "basis": "consent",
        "consent_ids": [consent_id],
        "override_id": None,
    }
    body.update(overrides)
    return body


async def size(client: httpx.AsyncClient, callers: Callers) -> int:
    response = await client.post("/ledger/tree-head", headers=callers.auditor())
    value: int = response.json()["tree_size"]
    return value


class TestRecordDisclosure:
    async def test_a_disclosure_becomes_a_ledger_event(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        response = await client.post(
            "/disclosures", json=disclosure_body(consent["id"]), headers=callers.service()
        )
        assert response.status_code == 201
        recorded = response.json()
        assert set(recorded) == {"id", "ledger_index", "recorded_at"}
        assert recorded["ledger_index"] == 1
        entries = await client.get("/ledger/entries?start=1&end=2", headers=callers.auditor())
        body = entries.json()[0]["body"]
        assert body["type"] == "disclosure.made"
        assert body["data"]["consent_ids"] == [consent["id"]]

    async def test_a_retry_returns_the_first_record_and_adds_no_event(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        body = disclosure_body(consent["id"])
        first = await client.post("/disclosures", json=body, headers=callers.service())
        again = await client.post("/disclosures", json=body, headers=callers.service())
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert await size(client, callers) == 2

    async def test_concurrent_retries_record_one_event(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        body = disclosure_body(consent["id"])
        responses = await asyncio.gather(
            *(client.post("/disclosures", json=body, headers=callers.service()) for _ in range(6))
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
        assert await size(client, callers) == 2

    async def test_a_different_disclosure_under_the_same_referral_is_409(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        body = disclosure_body(consent["id"])
        await client.post("/disclosures", json=body, headers=callers.service())
        changed = {**body, "categories": ["identity.basic", "contact", "health.physical"]}
        response = await client.post("/disclosures", json=changed, headers=callers.service())
        assert response.status_code == 409
        assert await size(client, callers) == 2

    async def test_a_disclosure_without_its_basis_is_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        for change in (
            {"consent_ids": []},
            {"basis": "emergency", "consent_ids": []},
            {"basis": "none"},
            {"categories": ["identity.basic", "favourite_food"]},
        ):
            body = disclosure_body(consent["id"], **change)
            response = await client.post("/disclosures", json=body, headers=callers.service())
            assert response.status_code == 422, change
        assert await size(client, callers) == 1

    async def test_foreign_consent_ids_and_non_services_are_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        other = await grant(client, callers, subject_ref=OTHER_SUBJECT)
        response = await client.post(
            "/disclosures", json=disclosure_body(other["id"]), headers=callers.service()
        )
        assert response.status_code == 422
        assert response.json()["type"] == "urn:refex:problem:unknown-disclosure-basis"
        by_host = await client.post(
            "/disclosures", json=disclosure_body(other["id"]), headers=callers.host()
        )
        assert by_host.status_code == 403
        assert await size(client, callers) == 1


class TestSubjectDisclosures:
    async def test_the_sender_and_auditors_see_what_went_where(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        bodies = [disclosure_body(consent["id"]) for _ in range(3)]
        for body in bodies:
            await client.post("/disclosures", json=body, headers=callers.service())
        path = f"/subjects/{SUBJECT}/disclosures"
        own = (await client.get(path, headers=callers.host())).json()
        audited = (await client.get(path, headers=callers.auditor())).json()
        assert [d["referral_id"] for d in own["items"]] == [b["referral_id"] for b in bodies]
        assert audited == own
        assert own["items"][0]["basis"] == "consent"
        assert own["items"][0]["recipient_org_id"] == CLINIC_ORG
        first_page = (await client.get(f"{path}?limit=2", headers=callers.host())).json()
        assert len(first_page["items"]) == 2
        rest = await client.get(
            f"{path}?limit=2&cursor={first_page['next_cursor']}", headers=callers.host()
        )
        assert [d["referral_id"] for d in rest.json()["items"]] == [bodies[2]["referral_id"]]

    async def test_other_organisations_see_nothing(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        await client.post(
            "/disclosures", json=disclosure_body(consent["id"]), headers=callers.service()
        )
        path = f"/subjects/{SUBJECT}/disclosures"
        other = await client.get(path, headers=callers.host(OTHER_HOST_ORG))
        assert other.status_code == 200
        assert other.json() == {"items": [], "next_cursor": None}
        # A provider sees the disclosures it made itself: none for a host office's subject.
        provider = await client.get(path, headers=callers.provider())
        assert provider.status_code == 200
        assert provider.json() == {"items": [], "next_cursor": None}
        named = await client.get("/subjects/ada@example.org/disclosures", headers=callers.host())
        assert named.status_code == 422
        assert "ada@example.org" not in named.text
