"""POST /decisions: refusal by default; consents and overrides decide what may go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.consent import service
from tests.consent.conftest import (
    CLINIC_ORG,
    HOST_ORG,
    OTHER_CLINIC_ORG,
    OTHER_HOST_ORG,
    OTHER_SUBJECT,
    Callers,
    decision_body,
    grant,
    iso,
)

REQUESTED = ["identity.basic", "contact", "health.mental"]
CATEGORY_GRANTEE = {"kind": "service_category", "service_category": "health", "country": "NG"}


async def decide(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/decisions", json=decision_body(**overrides), headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def refused(decision: dict[str, Any]) -> bool:
    return (
        decision["basis"] == "none"
        and decision["permitted_categories"] == []
        and decision["consent_ids"] == []
        and decision["override_id"] is None
        and decision["withheld"] == dict.fromkeys(REQUESTED, "no_consent")
    )


class TestDefaultRefusal:
    async def test_without_any_consent_everything_is_withheld(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        decision = await decide(client, callers.service())
        assert refused(decision)
        assert decision["decided_at"]


class TestConsentBasis:
    async def test_an_organisation_consent_permits_its_categories_only(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        decision = await decide(client, callers.service())
        assert decision["basis"] == "consent"
        assert decision["permitted_categories"] == ["identity.basic", "contact"]
        assert decision["withheld"] == {"health.mental": "no_consent"}
        assert decision["consent_ids"] == [consent["id"]]
        assert decision["override_id"] is None

    async def test_a_category_consent_needs_the_recipient_country(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers, grantee=CATEGORY_GRANTEE)
        matched = await decide(client, callers.service())
        assert matched["consent_ids"] == [consent["id"]]
        assert refused(await decide(client, callers.service(), recipient_country=None))
        assert refused(await decide(client, callers.service(), recipient_country="GH"))
        assert refused(await decide(client, callers.service(), service_category="housing"))

    async def test_a_consent_for_something_else_does_not_count(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await grant(client, callers)
        for change in (
            {"recipient_org_id": OTHER_CLINIC_ORG},
            {"purpose": "monitoring"},
            {"subject_ref": OTHER_SUBJECT},
            {"sender_org_id": OTHER_HOST_ORG},
        ):
            assert refused(await decide(client, callers.service(), **change)), change

    async def test_consents_add_up_and_each_is_named(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        first = await grant(client, callers, categories=["identity.basic"])
        second = await grant(
            client, callers, categories=["health.mental"], grantee=CATEGORY_GRANTEE
        )
        await grant(client, callers, categories=["skills"])
        decision = await decide(client, callers.service())
        assert decision["permitted_categories"] == ["identity.basic", "health.mental"]
        assert decision["consent_ids"] == [first["id"], second["id"]]
        assert decision["withheld"] == {"contact": "no_consent"}

    async def test_expired_and_future_consents_never_count(
        self, client: httpx.AsyncClient, callers: Callers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        now = datetime.now(UTC)
        await grant(
            client,
            callers,
            valid_from=iso(now - timedelta(days=10)),
            valid_until=iso(now + timedelta(days=1)),
        )
        await grant(
            client,
            callers,
            valid_from=iso(now + timedelta(days=5)),
            valid_until=iso(now + timedelta(days=10)),
        )
        two_days_later = now + timedelta(days=2)  # the first has expired, the second not begun
        monkeypatch.setattr(service, "utcnow", lambda: two_days_later)
        assert refused(await decide(client, callers.service()))
        app = client.app  # type: ignore[attr-defined]
        async with app.state.db.sessionmaker() as session, session.begin():
            recorded = await service.record_expiries(session=session, settings=app.state.settings)
        assert recorded == 1
        entries = await client.get("/ledger/entries?start=2&end=3", headers=callers.auditor())
        assert entries.json()[0]["body"]["type"] == "consent.expired"

    async def test_a_withdrawn_consent_never_counts(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        assert not refused(await decide(client, callers.service()))
        await client.post(
            f"/consents/{consent['id']}/withdraw", json={"reason": "other"}, headers=callers.host()
        )
        assert refused(await decide(client, callers.service()))


class TestCallers:
    async def test_host_offices_decide_for_themselves_services_for_anyone(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await grant(client, callers)
        own = await decide(client, callers.host(), sender_org_id=None)
        assert own["basis"] == "consent"
        other = await decide(client, callers.host(OTHER_HOST_ORG), sender_org_id=None)
        assert refused(other)
        by_service = await decide(client, callers.service(), sender_org_id=None)
        assert by_service["basis"] == "consent"

    async def test_a_host_office_cannot_ask_for_another_sender(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await grant(client, callers)
        response = await client.post(
            "/decisions",
            json=decision_body(sender_org_id=HOST_ORG),
            headers=callers.host(OTHER_HOST_ORG),
        )
        assert response.status_code == 422
        assert response.json()["type"] == "urn:refex:problem:sender-not-your-organisation"

    async def test_other_roles_and_unknown_categories_are_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        for role in ("provider", "auditor", "coordinator"):
            headers = callers.minter.headers(roles=[role], org=CLINIC_ORG)
            response = await client.post("/decisions", json=decision_body(), headers=headers)
            assert response.status_code == 403
        body = decision_body(requested_categories=["identity.basic", "bank_account"])
        response = await client.post("/decisions", json=body, headers=callers.service())
        assert response.status_code == 422
        assert HOST_ORG not in response.text
