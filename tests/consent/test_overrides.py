"""Emergency overrides: requested, attested by a clinician, at most 72 hours, every step logged."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.consent import service
from services.consent.app import create_app
from services.consent.settings import ConsentSettings
from shared.http import StaticToken
from tests.consent.conftest import (
    CLINIC_ORG,
    HOST_ORG,
    MHP_ORG,
    OTHER_CLINIC_ORG,
    OTHER_HOST_ORG,
    SUBJECT,
    Callers,
    decision_body,
    grant,
)

SERVICE_ID = "0192f000-0000-7000-8000-00000000a001"
STATEMENT = "Acute suicide risk reported by the returnee's sister on arrival; needs care today."
ATTESTATION = "Assessed by phone: imminent risk to life, psychiatric admission required."


DEFAULT_EMERGENCY = ["identity.basic", "contact", "health.mental"]


def resolution(
    *,
    allowed: bool = True,
    permitted: list[str] | None = None,
    emergency: list[str] | None = DEFAULT_EMERGENCY,
) -> dict[str, Any]:
    """A realistic GET /agreements/resolve answer of the directory (emergency None: omitted)."""
    answer: dict[str, Any] = {
        "agreement": {
            "id": "0192f000-0000-7000-8000-00000000b001",
            "version": 3,
            "sender_org_id": None,
            "provider_org_id": CLINIC_ORG,
            "service_categories": ["mental_health_psychosocial"],
            "permitted_categories": permitted
            or ["identity.basic", "contact", "health.mental", "vulnerability"],
            "purpose": "referral",
            "retention_days": 365,
            "emergency_override_allowed": allowed,
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": None,
            "programme": "EU-RE-2026",
            "document_sha256": None,
        },
        "service": {
            "id": SERVICE_ID,
            "organisation_id": CLINIC_ORG,
            "category": "mental_health_psychosocial",
            "accepting_referrals": True,
            "country": "NG",
            "admin_areas": ["NG-LA"],
            "name": {"en": "Lagos psychosocial support"},
        },
        "recipient": {"organisation_id": CLINIC_ORG, "webhook_url": None, "keys": {"keys": []}},
        "sender": {"organisation_id": HOST_ORG, "webhook_url": None, "keys": {"keys": []}},
        "focal_point": None,
        "backup_focal_point": None,
    }
    if emergency is not None:
        answer["agreement"]["emergency_categories"] = emergency
    return answer


class Directory:
    """Answers the consent service's agreement queries like the directory would."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, Any]] = (200, resolution())
        self.requests: list[httpx.Request] = []
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request)
        status, body = self.answer
        return httpx.Response(status, json=body)


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
def override_app(consent_settings: Callable[..., ConsentSettings], directory: Directory) -> FastAPI:
    return create_app(
        consent_settings(),
        tokens=StaticToken("svc"),
        directory_transport=httpx.MockTransport(directory.handle),
    )


@pytest.fixture
async def client(override_app: FastAPI, in_process: Any) -> Any:
    async with in_process(override_app) as http:
        yield http


def override_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject_ref": SUBJECT,
        "recipient_org_id": CLINIC_ORG,
        "service_id": SERVICE_ID,
        "categories": ["identity.basic", "health.mental"],
        "statement": STATEMENT,
    }
    body.update(overrides)
    return body


def attest_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"registration_number": "MDCN/2019/44812", "statement": ATTESTATION}
    body.update(overrides)
    return body


EMERGENCY_DECISION = decision_body(
    service_category="mental_health_psychosocial",
    requested_categories=["identity.basic", "contact", "health.mental"],
)


async def request_override(client: httpx.AsyncClient, callers: Callers) -> dict[str, Any]:
    response = await client.post("/overrides", json=override_body(), headers=callers.host())
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def active_override(
    client: httpx.AsyncClient, callers: Callers, **attest: Any
) -> dict[str, Any]:
    override = await request_override(client, callers)
    response = await client.post(
        f"/overrides/{override['id']}/attest",
        json=attest_body(**attest),
        headers=callers.clinician(),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def decide(client: httpx.AsyncClient, callers: Callers) -> dict[str, Any]:
    response = await client.post("/decisions", json=EMERGENCY_DECISION, headers=callers.service())
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def events(client: httpx.AsyncClient, callers: Callers) -> list[dict[str, Any]]:
    response = await client.get("/ledger/entries?start=0&end=1000", headers=callers.auditor())
    return [entry["body"] for entry in response.json()]


class TestLifecycle:
    async def test_an_attested_override_permits_only_its_minimal_categories(
        self, client: httpx.AsyncClient, callers: Callers, directory: Directory
    ) -> None:
        override = await request_override(client, callers)
        assert override["status"] == "pending"
        assert (await decide(client, callers))["basis"] == "none"
        attested = await client.post(
            f"/overrides/{override['id']}/attest", json=attest_body(), headers=callers.clinician()
        )
        assert attested.json()["status"] == "active"
        expires = datetime.fromisoformat(attested.json()["expires_at"])
        started = datetime.fromisoformat(attested.json()["attested_at"])
        assert expires - started == timedelta(hours=72)
        decision = await decide(client, callers)
        assert decision["basis"] == "emergency"
        assert decision["override_id"] == override["id"]
        assert decision["permitted_categories"] == ["identity.basic", "health.mental"]
        assert decision["withheld"] == {"contact": "no_consent"}
        assert decision["consent_ids"] == []
        [query] = directory.requests
        assert query.url.path == "/agreements/resolve"
        assert dict(query.url.params) == {
            "sender_org": HOST_ORG,
            "service_id": SERVICE_ID,
            "purpose": "referral",
        }
        assert query.headers["authorization"] == "Bearer svc"

    async def test_ending_stops_it_and_every_step_is_a_ledger_event(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await active_override(client, callers)
        ended = await client.post(
            f"/overrides/{override['id']}/end",
            json={"reason": "consent_obtained"},
            headers=callers.host(),
        )
        assert ended.json()["status"] == "ended"
        assert (await decide(client, callers))["basis"] == "none"
        log = await events(client, callers)
        assert [e["type"] for e in log] == [
            "override.requested",
            "override.started",
            "override.ended",
        ]
        assert all(e["data"]["override_id"] == override["id"] for e in log)
        assert log[1]["data"]["registration_number"] == "MDCN/2019/44812"

    async def test_an_active_override_takes_precedence_over_consent(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await grant(client, callers, categories=["contact"])
        override = await active_override(client, callers)
        decision = await decide(client, callers)
        assert decision["basis"] == "emergency"
        assert decision["override_id"] == override["id"]
        assert "contact" not in decision["permitted_categories"]

    async def test_statements_are_kept_only_as_hash_and_length(
        self, client: httpx.AsyncClient, callers: Callers, override_app: FastAPI
    ) -> None:
        override = await active_override(client, callers)
        assert (
            override["request_statement_sha256"] == hashlib.sha256(STATEMENT.encode()).hexdigest()
        )
        assert override["request_statement_length"] == len(STATEMENT)
        assert override["attestation_statement_length"] == len(ATTESTATION)
        dumped = str(await events(client, callers)) + str(override)
        async with override_app.state.db.engine.connect() as connection:
            from sqlalchemy import text

            for table in ("emergency_override", "ledger_entry"):
                rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()
                dumped += str(rows)
        assert "suicide" not in dumped
        assert "psychiatric" not in dumped


class TestRules:
    async def test_no_agreement_or_one_without_emergency_override_refuses(
        self, client: httpx.AsyncClient, callers: Callers, directory: Directory
    ) -> None:
        directory.answer = (200, resolution(allowed=False))
        response = await client.post("/overrides", json=override_body(), headers=callers.host())
        assert response.status_code == 422
        assert response.json()["type"] == "urn:refex:problem:override-not-allowed"
        directory.answer = (404, {"type": "urn:refex:problem:no-agreement", "status": 404})
        response = await client.post("/overrides", json=override_body(), headers=callers.host())
        assert response.status_code == 422
        assert response.json()["type"] == "urn:refex:problem:override-not-allowed"
        assert await events(client, callers) == []

    async def test_categories_or_recipient_outside_the_agreement_are_refused(
        self, client: httpx.AsyncClient, callers: Callers, directory: Directory
    ) -> None:
        directory.answer = (200, resolution(permitted=["identity.basic"]))
        response = await client.post("/overrides", json=override_body(), headers=callers.host())
        assert response.status_code == 422
        assert response.json()["categories"] == ["health.mental"]
        directory.answer = (200, resolution())
        elsewhere = override_body(recipient_org_id=OTHER_CLINIC_ORG)
        response = await client.post("/overrides", json=elsewhere, headers=callers.host())
        assert response.status_code == 422
        assert await events(client, callers) == []

    async def test_an_unreachable_directory_is_503_and_nothing_is_stored(
        self, client: httpx.AsyncClient, callers: Callers, directory: Directory
    ) -> None:
        directory.down = True
        response = await client.post("/overrides", json=override_body(), headers=callers.host())
        assert response.status_code == 503
        assert await events(client, callers) == []

    async def test_only_a_mental_health_professional_attests(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await request_override(client, callers)
        for headers in (callers.host(), callers.auditor(), callers.service()):
            response = await client.post(
                f"/overrides/{override['id']}/attest", json=attest_body(), headers=headers
            )
            assert response.status_code == 403
        clinician_request = await client.post(
            "/overrides", json=override_body(), headers=callers.clinician()
        )
        assert clinician_request.status_code == 403
        assert len(await events(client, callers)) == 1

    async def test_more_than_72_hours_is_refused(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await request_override(client, callers)
        response = await client.post(
            f"/overrides/{override['id']}/attest",
            json=attest_body(duration_hours=73),
            headers=callers.clinician(),
        )
        assert response.status_code == 422
        stored = await client.get(f"/overrides/{override['id']}", headers=callers.host())
        assert stored.json()["status"] == "pending"

    async def test_after_72_hours_it_no_longer_counts_and_expiry_is_logged(
        self,
        client: httpx.AsyncClient,
        callers: Callers,
        override_app: FastAPI,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        override = await active_override(client, callers)
        later = datetime.now(UTC) + timedelta(hours=72, seconds=1)
        monkeypatch.setattr(service, "utcnow", lambda: later)
        assert (await decide(client, callers))["basis"] == "none"
        async with override_app.state.db.sessionmaker() as session, session.begin():
            settings = override_app.state.settings
            assert await service.record_expiries(session=session, settings=settings) == 1
        log = await events(client, callers)
        assert log[-1]["type"] == "override.expired"
        stored = await client.get(f"/overrides/{override['id']}", headers=callers.auditor())
        assert stored.json()["status"] == "expired"
        ended = await client.post(
            f"/overrides/{override['id']}/end", json={"reason": "other"}, headers=callers.host()
        )
        assert ended.status_code == 409

    async def test_steps_out_of_order_are_409_without_a_ledger_event(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await active_override(client, callers)
        path = f"/overrides/{override['id']}"
        again = await client.post(f"{path}/attest", json=attest_body(), headers=callers.clinician())
        assert again.status_code == 409
        await client.post(f"{path}/end", json={"reason": "risk_resolved"}, headers=callers.host())
        twice = await client.post(f"{path}/end", json={"reason": "other"}, headers=callers.host())
        assert twice.status_code == 409
        assert len(await events(client, callers)) == 3


class TestVisibility:
    async def test_other_organisations_see_nothing_and_auditors_see_all(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await request_override(client, callers)
        path = f"/overrides/{override['id']}"
        assert (await client.get(path, headers=callers.host(OTHER_HOST_ORG))).status_code == 404
        assert (await client.get(path, headers=callers.provider())).status_code == 403
        end = await client.post(
            f"{path}/end", json={"reason": "other"}, headers=callers.host(OTHER_HOST_ORG)
        )
        assert end.status_code == 404
        audited = await client.get("/overrides", headers=callers.auditor())
        assert [o["id"] for o in audited.json()["items"]] == [override["id"]]
        own = await client.get("/overrides?status=pending", headers=callers.host())
        assert [o["id"] for o in own.json()["items"]] == [override["id"]]
        other = await client.get("/overrides", headers=callers.host(OTHER_HOST_ORG))
        assert other.json()["items"] == []
        unknown = await client.post(
            f"/overrides/{uuid.uuid4()}/attest", json=attest_body(), headers=callers.clinician()
        )
        assert unknown.status_code == 404


def second_clinician(callers: Callers) -> dict[str, str]:
    return callers.minter.headers(
        roles=["mental_health_professional"], org=MHP_ORG, client="dr-adeyemi"
    )


async def attest(
    client: httpx.AsyncClient, override_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(
        f"/overrides/{override_id}/attest", json=attest_body(**body), headers=headers
    )


class TestSafeguards:
    @pytest.mark.promise(4)
    async def test_the_requesting_client_cannot_attest_its_own_override(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        both = callers.minter.headers(
            roles=["host_office", "mental_health_professional"], org=HOST_ORG, client="host-client"
        )
        requested = await client.post("/overrides", json=override_body(), headers=both)
        assert requested.status_code == 201
        response = await attest(client, requested.json()["id"], both)
        assert response.status_code == 403
        assert response.json()["type"] == "urn:refex:problem:override-self-attestation"
        stored = await client.get(f"/overrides/{requested.json()['id']}", headers=both)
        assert stored.json()["status"] == "pending"
        assert len(await events(client, callers)) == 1

    async def test_the_attestation_names_the_professionals_own_organisation(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        override = await request_override(client, callers)
        wrong = await attest(
            client, override["id"], callers.clinician(), professional_org_id=HOST_ORG
        )
        assert wrong.status_code == 422
        assert wrong.json()["type"] == "urn:refex:problem:attesting-organisation-mismatch"
        right = await attest(
            client, override["id"], callers.clinician(), professional_org_id=MHP_ORG
        )
        assert right.status_code == 200
        assert right.json()["attested_by_org"] == MHP_ORG
        assert (await events(client, callers))[-1]["data"]["attested_by_org"] == MHP_ORG

    @pytest.mark.promise(4)
    async def test_only_the_agreements_emergency_categories_may_be_asked_for(
        self, client: httpx.AsyncClient, callers: Callers, directory: Directory
    ) -> None:
        wide = override_body(categories=["identity.basic", "vulnerability"])
        directory.answer = (200, resolution(emergency=["identity.basic", "vulnerability"]))
        assert (
            await client.post("/overrides", json=wide, headers=callers.host())
        ).status_code == 201
        for emergency in (DEFAULT_EMERGENCY, None):  # None: an older directory, the default set
            directory.answer = (200, resolution(emergency=emergency))
            response = await client.post("/overrides", json=wide, headers=callers.host())
            assert response.status_code == 422
            assert response.json()["type"] == "urn:refex:problem:override-outside-agreement"
            assert response.json()["categories"] == ["vulnerability"]
        assert len(await events(client, callers)) == 1

    @pytest.mark.promise(4)
    async def test_a_pending_override_expires_after_24_hours(
        self,
        client: httpx.AsyncClient,
        callers: Callers,
        override_app: FastAPI,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        override = await request_override(client, callers)
        later = datetime.now(UTC) + timedelta(hours=24, seconds=1)
        monkeypatch.setattr(service, "utcnow", lambda: later)
        response = await attest(client, override["id"], callers.clinician())
        assert response.status_code == 422
        assert response.json()["type"] == "urn:refex:problem:override-request-expired"
        async with override_app.state.db.sessionmaker() as session, session.begin():
            settings = override_app.state.settings
            assert await service.record_expiries(session=session, settings=settings) == 1
        stored = await client.get(f"/overrides/{override['id']}", headers=callers.auditor())
        assert stored.json()["status"] == "expired"
        assert [e["type"] for e in await events(client, callers)] == [
            "override.requested",
            "override.expired",
        ]

    @pytest.mark.promise(4)
    async def test_renewal_beyond_72_hours_needs_another_professional(
        self, client: httpx.AsyncClient, callers: Callers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = await active_override(client, callers)
        near_end = datetime.now(UTC) + timedelta(hours=71)
        monkeypatch.setattr(service, "utcnow", lambda: near_end)
        renewal = await request_override(client, callers)
        same = await attest(client, renewal["id"], callers.clinician())
        assert same.status_code == 403
        assert same.json()["type"] == "urn:refex:problem:override-fresh-attestation-needed"
        stored = await client.get(f"/overrides/{renewal['id']}", headers=callers.host())
        assert stored.json()["status"] == "pending"
        other = await attest(client, renewal["id"], second_clinician(callers))
        assert other.status_code == 200, other.text
        assert first["id"] != renewal["id"]

    async def test_after_a_gap_of_more_than_24_hours_the_same_professional_may_attest(
        self, client: httpx.AsyncClient, callers: Callers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await active_override(client, callers)
        much_later = datetime.now(UTC) + timedelta(hours=72 + 25)
        monkeypatch.setattr(service, "utcnow", lambda: much_later)
        renewal = await request_override(client, callers)
        response = await attest(client, renewal["id"], callers.clinician())
        assert response.status_code == 200, response.text

    async def test_a_short_renewal_within_72_hours_is_allowed(
        self, client: httpx.AsyncClient, callers: Callers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await active_override(client, callers, duration_hours=24)
        next_day = datetime.now(UTC) + timedelta(hours=23)
        monkeypatch.setattr(service, "utcnow", lambda: next_day)
        renewal = await request_override(client, callers)
        response = await attest(client, renewal["id"], callers.clinician(), duration_hours=24)
        assert response.status_code == 200, response.text
