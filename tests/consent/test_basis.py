"""A disclosure's basis is re-checked when it is recorded, and services can ask about it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.consent import service
from tests.consent.conftest import (
    HOST_ORG,
    OTHER_CLINIC_ORG,
    OTHER_HOST_ORG,
    SUBJECT,
    Callers,
    grant,
)
from tests.consent.test_disclosures import disclosure_body, size
from tests.consent.test_overrides import (  # noqa: F401  (directory, override_app: fixtures)
    active_override,
    directory,
    override_app,
)

PROBLEM = "urn:refex:problem:"


@pytest.fixture
async def client(override_app: FastAPI, in_process: Any) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    """A consent app whose directory is a fake, so overrides can be requested."""
    async with in_process(override_app) as http:
        yield http


async def withdraw(client: httpx.AsyncClient, callers: Callers, consent_id: str) -> None:
    response = await client.post(
        f"/consents/{consent_id}/withdraw",
        json={"reason": "returnee_request"},
        headers=callers.host(),
    )
    assert response.status_code == 200, response.text


async def end(client: httpx.AsyncClient, callers: Callers, override_id: str) -> None:
    response = await client.post(
        f"/overrides/{override_id}/end", json={"reason": "risk_resolved"}, headers=callers.host()
    )
    assert response.status_code == 200, response.text


async def disclosures(client: httpx.AsyncClient, callers: Callers) -> list[dict[str, Any]]:
    response = await client.get(f"/subjects/{SUBJECT}/disclosures", headers=callers.auditor())
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def emergency_disclosure(override: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = disclosure_body(
        "unused",
        basis="emergency",
        consent_ids=[],
        override_id=override["id"],
        categories=["identity.basic", "health.mental"],
    )
    body.update(overrides)
    return body


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


class TestDisclosureRecheck:
    @pytest.mark.promise(1)
    async def test_a_withdrawn_consent_is_refused_and_nothing_is_recorded(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        await withdraw(client, callers, consent["id"])
        before = await size(client, callers)
        response = await client.post(
            "/disclosures", json=disclosure_body(consent["id"]), headers=callers.service()
        )
        assert response.status_code == 409
        assert response.json()["type"] == PROBLEM + "basis-no-longer-valid"
        assert response.json()["reason"] == "consent-withdrawn"
        assert await size(client, callers) == before
        assert await disclosures(client, callers) == []

    @pytest.mark.promise(1)
    async def test_an_expired_consent_is_refused(
        self, client: httpx.AsyncClient, callers: Callers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        consent = await grant(client, callers)
        moment = later(days=181)
        monkeypatch.setattr(service, "utcnow", lambda: moment)
        response = await client.post(
            "/disclosures", json=disclosure_body(consent["id"]), headers=callers.service()
        )
        assert response.status_code == 409
        assert response.json()["reason"] == "consent-expired"
        assert await size(client, callers) == 1

    @pytest.mark.promise(1)
    async def test_categories_the_consents_do_not_cover_are_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers, categories=["identity.basic"])
        body = disclosure_body(consent["id"], categories=["identity.basic", "health.mental"])
        response = await client.post("/disclosures", json=body, headers=callers.service())
        assert response.status_code == 422
        assert response.json()["type"] == PROBLEM + "disclosure-outside-basis"
        assert response.json()["categories"] == ["health.mental"]
        assert await size(client, callers) == 1

    @pytest.mark.promise(1)
    async def test_a_consent_for_another_grantee_or_sender_is_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        elsewhere = await grant(
            client, callers, grantee={"kind": "organisation", "org_id": OTHER_CLINIC_ORG}
        )
        for body in (
            disclosure_body(elsewhere["id"]),
            disclosure_body(
                elsewhere["id"], recipient_org_id=OTHER_CLINIC_ORG, sender_org_id=OTHER_HOST_ORG
            ),
            disclosure_body(
                elsewhere["id"], recipient_org_id=OTHER_CLINIC_ORG, purpose="monitoring"
            ),
        ):
            response = await client.post("/disclosures", json=body, headers=callers.service())
            assert response.status_code == 422, body
            assert response.json()["type"] == PROBLEM + "unknown-disclosure-basis"
        assert await size(client, callers) == 1

    async def test_a_consent_granted_to_a_category_needs_the_matching_category_and_country(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        grantee = {"kind": "service_category", "service_category": "health", "country": "NG"}
        consent = await grant(client, callers, grantee=grantee)
        missing = disclosure_body(consent["id"])
        wrong = disclosure_body(consent["id"], service_category="housing", recipient_country="NG")
        for body in (missing, wrong):
            response = await client.post("/disclosures", json=body, headers=callers.service())
            assert response.status_code == 422
        right = disclosure_body(consent["id"], service_category="health", recipient_country="NG")
        response = await client.post("/disclosures", json=right, headers=callers.service())
        assert response.status_code == 201, response.text

    @pytest.mark.promise(1)
    async def test_an_ended_override_is_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await active_override(client, callers)
        await end(client, callers, override["id"])
        before = await size(client, callers)
        response = await client.post(
            "/disclosures", json=emergency_disclosure(override), headers=callers.service()
        )
        assert response.status_code == 409
        assert response.json()["reason"] == "override-ended"
        assert await size(client, callers) == before

    async def test_an_active_override_covers_only_its_categories(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await active_override(client, callers)
        wide = emergency_disclosure(override, categories=["identity.basic", "contact"])
        response = await client.post("/disclosures", json=wide, headers=callers.service())
        assert response.status_code == 422
        assert response.json()["categories"] == ["contact"]
        response = await client.post(
            "/disclosures", json=emergency_disclosure(override), headers=callers.service()
        )
        assert response.status_code == 201, response.text

    async def test_a_retry_after_withdrawal_replays_the_first_record(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        body = disclosure_body(consent["id"])
        first = await client.post("/disclosures", json=body, headers=callers.service())
        await withdraw(client, callers, consent["id"])
        again = await client.post("/disclosures", json=body, headers=callers.service())
        assert again.status_code == 201
        assert again.json() == first.json()


class TestBasisCheck:
    async def test_consents_in_force_answer_until_the_earliest_end(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        soon = await grant(client, callers, valid_until=later(days=3).isoformat())
        long = await grant(client, callers)
        response = await client.post(
            "/basis-checks",
            json={"consent_ids": [soon["id"], long["id"]]},
            headers=callers.service(),
        )
        assert response.status_code == 200
        answer = response.json()
        assert answer["in_force"] is True
        assert answer["reason"] is None
        assert datetime.fromisoformat(answer["until"]) == datetime.fromisoformat(
            soon["valid_until"]
        )

    async def test_each_end_of_a_basis_is_named(
        self, client: httpx.AsyncClient, callers: Callers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        withdrawn = await grant(client, callers)
        await withdraw(client, callers, withdrawn["id"])
        kept = await grant(client, callers)
        override = await active_override(client, callers)
        ended = await active_override(client, callers, duration_hours=1)
        await end(client, callers, ended["id"])

        async def check(**body: Any) -> dict[str, Any]:
            body.setdefault("consent_ids", [])
            response = await client.post("/basis-checks", json=body, headers=callers.service())
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            assert answer["until"] is None if not answer["in_force"] else True
            return answer

        assert (await check(consent_ids=[kept["id"], withdrawn["id"]]))["reason"] == (
            "consent-withdrawn"
        )
        assert (await check(override_id=ended["id"]))["reason"] == "override-ended"
        assert (await check(consent_ids=[str(uuid.uuid4())]))["reason"] == "unknown-basis"
        assert (await check())["reason"] == "unknown-basis"
        assert (await check(override_id=override["id"]))["in_force"] is True
        moment = later(days=200)
        monkeypatch.setattr(service, "utcnow", lambda: moment)
        assert (await check(consent_ids=[kept["id"]]))["reason"] == "consent-expired"
        assert (await check(override_id=override["id"]))["reason"] == "override-expired"

    async def test_a_referral_id_must_match_the_recorded_disclosure(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        other = await grant(client, callers)
        body = disclosure_body(consent["id"])
        await client.post("/disclosures", json=body, headers=callers.service())
        checks = {
            consent["id"]: True,
            other["id"]: False,
        }
        for consent_id, in_force in checks.items():
            response = await client.post(
                "/basis-checks",
                json={"consent_ids": [consent_id], "referral_id": body["referral_id"]},
                headers=callers.service(),
            )
            assert response.json()["in_force"] is in_force
        unrecorded = await client.post(
            "/basis-checks",
            json={"consent_ids": [consent["id"]], "referral_id": str(uuid.uuid4())},
            headers=callers.service(),
        )
        assert unrecorded.json() == {"in_force": False, "reason": "unknown-basis", "until": None}

    async def test_only_services_may_ask_and_unknown_fields_are_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        body = {"consent_ids": [consent["id"]]}
        for headers in (callers.host(), callers.auditor(), callers.provider()):
            response = await client.post("/basis-checks", json=body, headers=headers)
            assert response.status_code == 403
        extra = {**body, "subject_ref": SUBJECT}
        response = await client.post("/basis-checks", json=extra, headers=callers.service())
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "subject_ref"]
        assert HOST_ORG not in response.text
