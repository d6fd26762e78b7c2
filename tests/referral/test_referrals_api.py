"""Referrals through HTTP with the real directory and consent services behind them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from sqlalchemy import func, select, text

from services.referral import workers
from services.referral.models import AuditEvent, OutboxEvent, Referral
from shared.client import open_note, open_payload
from shared.crypto import CryptoError
from shared.demo import (
    AUDITOR_ORG,
    COORDINATOR_ORG,
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    PLATFORM_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from shared.webhooks import SIGNATURE_HEADER, verify_body
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

REQUESTED = ["identity.basic", "contact", "health.physical", "health.mental"]


def referral_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "service_id": str(DEMO_HEALTH_SERVICE),
        "subject_ref": SUBJECT,
        "requested_categories": REQUESTED,
        "casefile": CASEFILE,
    }
    body.update(overrides)
    return body


async def send(
    exchange: Exchange, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Any:
    return await exchange.referral.post(
        "/referrals",
        json=body or referral_body(),
        headers={**exchange.as_role("host_office", HOST_OFFICE_ORG), **(headers or {})},
    )


async def stored(exchange: Exchange, model: Any = Referral) -> int:
    async with exchange.referral_app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def all_stored_text(exchange: Exchange) -> str:
    """Every value of every row of the referral database, as text."""
    chunks = []
    async with exchange.referral_app.state.db.engine.connect() as connection:
        for table in (
            "referral",
            "referral_note",
            "audit_event",
            "outbox_event",
            "idempotency_record",
        ):
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            chunks.extend(str(tuple(row)) for row in rows)
    return "\n".join(chunks)


class TestCreateReferral:
    async def test_shares_exactly_what_sop_and_consent_allow_and_says_why_not_the_rest(
        self, exchange: Exchange
    ) -> None:
        await record_consent(
            exchange, ["identity.basic", "contact", "health.physical", "health.mental"]
        )
        response = await send(exchange)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["shared_categories"] == ["contact", "health.physical", "identity.basic"]
        withheld = {w["category"]: w["reason"] for w in body["withheld"]}
        assert withheld == {"health.mental": "not_in_sop", "protection": "not_requested"}
        assert body["basis"] == "consent" and body["consent_ids"]
        assert any("health.mental" in w for w in body["warnings"])
        assert body["acknowledge_by"] and body["respond_by"]
        assert response.headers["location"] == f"/referrals/{body['id']}"

    async def test_only_the_recipient_and_sender_keys_open_the_payload(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        for org in (HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG):
            casefile = open_payload(created, exchange.private_key(org))
            assert set(casefile) == {
                "schema_version",
                "identity_basic",
                "contact",
                "health_physical",
            }
            assert casefile["identity_basic"]["given_name"] == "CANARY-Amina"
        with pytest.raises(CryptoError):
            open_payload(created, exchange.private_key(SECOND_HOST_OFFICE_ORG))

    async def test_no_plaintext_personal_data_is_stored(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        assert (await send(exchange)).status_code == 201
        assert "CANARY" not in await all_stored_text(exchange)
        assert SUBJECT not in await all_stored_text(exchange)

    async def test_without_consent_nothing_is_sent_or_stored(self, exchange: Exchange) -> None:
        response = await send(exchange)
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"].endswith("nothing-to-share")
        assert "CANARY" not in response.text
        assert await stored(exchange) == 0
        assert await stored(exchange, AuditEvent) == 0

    async def test_unknown_case_file_fields_are_refused(self, exchange: Exchange) -> None:
        body = referral_body(casefile={**CASEFILE, "religion": "CANARY-x"})
        response = await send(exchange, body)
        assert response.status_code == 422
        assert "CANARY" not in response.text
        assert await stored(exchange) == 0

    async def test_a_service_without_agreement_is_refused_with_what_is_missing(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        response = await exchange.referral.post(
            "/referrals",
            json=referral_body(),
            headers=exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG),
        )
        assert response.status_code in (404, 422)
        assert response.json()["detail"]
        assert await stored(exchange) == 0

    async def test_same_idempotency_key_and_body_returns_the_first_answer(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        key = {"Idempotency-Key": "retry-key-0001"}
        first = await send(exchange, headers=key)
        second = await send(exchange, headers=key)
        assert first.status_code == 201 and second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert await stored(exchange) == 1
        other = await send(exchange, referral_body(urgency="urgent"), headers=key)
        assert other.status_code == 422
        assert other.json()["type"].endswith("idempotency-key-reused")

    async def test_a_second_open_referral_for_the_same_subject_is_a_conflict(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        first = (await send(exchange)).json()
        again = await send(exchange)
        assert again.status_code == 409
        assert again.json()["existing_referral_id"] == first["id"]
        assert await stored(exchange) == 1


class TestConcurrency:
    async def test_concurrent_identical_requests_create_one_referral(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        key = {"Idempotency-Key": "concurrent-key-01"}
        answers = await asyncio.gather(*(send(exchange, headers=key) for _ in range(5)))
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        assert await stored(exchange) == 1

    async def test_concurrent_different_keys_for_one_subject_give_one_referral(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        answers = await asyncio.gather(
            *(
                send(exchange, headers={"Idempotency-Key": f"distinct-key-{n:02d}"})
                for n in range(4)
            )
        )
        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
        assert await stored(exchange) == 1


class TestVisibility:
    async def test_a_third_organisation_gets_404_and_auditors_no_payload(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        path = f"/referrals/{created['id']}"
        foreign = await exchange.referral.get(
            path, headers=exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG)
        )
        assert foreign.status_code == 404
        other_provider = await exchange.referral.get(
            path, headers=exchange.as_role("provider", uuid.uuid4())
        )
        assert other_provider.status_code == 404
        audited = await exchange.referral.get(
            path, headers=exchange.as_role("auditor", AUDITOR_ORG)
        )
        assert audited.status_code == 200
        assert audited.json()["payload"] is None
        provider = await exchange.referral.get(
            path, headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        )
        assert provider.json()["payload"]["recipients"]

    async def test_lists_show_only_own_referrals(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        await send(exchange)
        inbox = await exchange.referral.get(
            "/referrals",
            params={"box": "received"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert len(inbox.json()["items"]) == 1
        stranger = await exchange.referral.get(
            "/referrals", headers=exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG)
        )
        assert stranger.json()["items"] == []


class TestLifecycle:
    async def test_the_provider_works_the_referral_to_completion(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        provider = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        path = f"/referrals/{created['id']}"
        for status in ("received", "accepted", "in-progress"):
            response = await exchange.referral.post(
                f"{path}/status", json={"status": status}, headers=provider
            )
            assert response.status_code == 200, response.text
        note = await exchange.referral.post(
            f"{path}/notes", headers=provider, json={"text": "CANARY first appointment booked"}
        )
        assert note.status_code == 201
        done = await exchange.referral.post(
            f"{path}/status",
            headers=provider,
            json={
                "status": "completed",
                "outcome": "got-help",
                "feedback": {"score": 5, "comment": "CANARY kind staff"},
            },
        )
        assert done.status_code == 200, done.text
        assert done.json()["outcome"] == "got-help" and done.json()["allowed_moves"] == []
        notes = await exchange.referral.get(
            f"{path}/notes",
            params={"include": "payload"},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        text_ = open_note(notes.json()[0], exchange.private_key(HOST_OFFICE_ORG))
        assert text_ == "CANARY first appointment booked"
        assert "CANARY" not in await all_stored_text(exchange)

    async def test_illegal_moves_answer_409_with_the_allowed_ones(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        response = await exchange.referral.post(
            f"/referrals/{created['id']}/status",
            json={"status": "accepted"},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 409
        assert set(response.json()["allowed"]) == {"cancelled", "entered-in-error"}

    async def test_rejection_needs_a_reason_and_stale_etags_are_refused(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        provider = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        path = f"/referrals/{created['id']}/status"
        no_reason = await exchange.referral.post(
            path, json={"status": "rejected"}, headers=provider
        )
        assert no_reason.status_code == 422
        stale = await exchange.referral.post(
            path, json={"status": "received"}, headers={**provider, "If-Match": '"99"'}
        )
        assert stale.status_code == 412
        fresh = await exchange.referral.post(
            path, json={"status": "received"}, headers={**provider, "If-Match": '"1"'}
        )
        assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'


class TestWithdrawalAndNotifications:
    async def test_withdrawal_cancels_open_referrals_and_notifies_both_sides(
        self, exchange: Exchange
    ) -> None:
        consent_id = await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        response = await exchange.referral.post(
            "/internal/consent-withdrawals",
            headers=exchange.minter.headers(roles=["service"], org=str(PLATFORM_ORG)),
            json={
                "event_id": str(uuid.uuid4()),
                "consent_id": consent_id,
                "subject_ref": SUBJECT,
                "withdrawn_at": "2026-11-25T10:00:00Z",
            },
        )
        assert response.status_code == 200
        assert response.json()["cancelled_referral_ids"] == [created["id"]]
        read = await exchange.referral.get(
            f"/referrals/{created['id']}", headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        )
        assert read.json()["status"] == "cancelled"
        assert read.json()["status_reason"] == "consent-withdrawn"
        note = await exchange.referral.post(
            f"/referrals/{created['id']}/notes",
            json={"text": "more"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert note.status_code == 409

    async def test_host_offices_cannot_call_the_internal_endpoint(self, exchange: Exchange) -> None:
        response = await exchange.referral.post(
            "/internal/consent-withdrawals",
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
            json={
                "event_id": str(uuid.uuid4()),
                "consent_id": "x",
                "subject_ref": SUBJECT,
                "withdrawn_at": "2026-11-25T10:00:00Z",
            },
        )
        assert response.status_code == 403

    async def test_webhooks_carry_ids_only_and_a_verifiable_signature(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        state = exchange.referral_app.state
        async with state.db.engine.begin() as connection:  # as if the provider had a webhook
            await connection.execute(
                text("UPDATE outbox_event SET webhook_url = 'https://provider.example/hooks'")
            )
        received: list[httpx.Request] = []

        def receiver(request: httpx.Request) -> httpx.Response:
            received.append(request)
            return httpx.Response(204)

        signing_key = workers.load_signing_key(state.settings)
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
            assert await workers.deliver_due(state.db, http, signing_key, max_attempts=3) == 1
            assert await workers.deliver_due(state.db, http, signing_key, max_attempts=3) == 0
        assert len(received) == 1
        body = received[0].content
        event = orjson.loads(body)
        assert set(event) == {"event_id", "event", "referral_id", "status", "occurred_at"}
        assert event["referral_id"] == created["id"] and event["event"] == "referral.requested"
        verify_body(body, received[0].headers[SIGNATURE_HEADER], state.webhook_jwks)
        assert b"CANARY" not in body

    async def test_a_failing_webhook_is_retried_then_dead_lettered_and_replayable(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        await send(exchange)
        state = exchange.referral_app.state
        async with state.db.engine.begin() as connection:
            await connection.execute(
                text("UPDATE outbox_event SET webhook_url = 'https://provider.example/hooks'")
            )
        signing_key = workers.load_signing_key(state.settings)
        down = httpx.MockTransport(lambda request: httpx.Response(503))
        async with httpx.AsyncClient(transport=down) as http:
            for _ in range(2):
                await workers.deliver_due(state.db, http, signing_key, max_attempts=2)
                async with state.db.engine.begin() as connection:  # skip the back-off wait
                    await connection.execute(
                        text("UPDATE outbox_event SET next_attempt_at = '2000-01-01 00:00:00'")
                    )
        admin = exchange.as_role("admin", PLATFORM_ORG)
        dead = (
            await exchange.referral.get("/referrals/deliveries/dead-letters", headers=admin)
        ).json()
        assert len(dead) == 1 and dead[0]["attempts"] == 2 and dead[0]["last_error"] == "HTTP 503"
        replay = await exchange.referral.post(
            f"/referrals/deliveries/{dead[0]['event_id']}/replay", headers=admin
        )
        assert replay.status_code == 202
        ok = httpx.MockTransport(lambda request: httpx.Response(200))
        async with httpx.AsyncClient(transport=ok) as http:
            assert await workers.deliver_due(state.db, http, signing_key, max_attempts=2) == 1


class TestResponseDeadlines:
    async def test_deadlines_follow_the_focal_points_business_hours(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        acknowledge_by = datetime.fromisoformat(created["acknowledge_by"])
        respond_by = datetime.fromisoformat(created["respond_by"])
        lagos = ZoneInfo("Africa/Lagos")
        for deadline in (acknowledge_by, respond_by):
            local = deadline.astimezone(lagos)
            assert local.weekday() < 5 and time(8) <= local.time() <= time(16)
        assert acknowledge_by <= respond_by

    async def test_unanswered_referrals_are_reminded_escalated_then_cancelled(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        created = (await send(exchange)).json()
        db = exchange.referral_app.state.db
        grace = timedelta(hours=24)

        async def shift(**deadlines: datetime) -> None:
            async with db.sessionmaker() as session, session.begin():
                referral = await session.get(Referral, uuid.UUID(created["id"]))
                for name, value in deadlines.items():
                    setattr(referral, name, value)

        async def events() -> list[str]:
            async with db.sessionmaker() as session:
                rows = await session.scalars(select(OutboxEvent.event))
                return list(rows)

        now = datetime.now(UTC)
        await shift(acknowledge_by=now - timedelta(minutes=5), respond_by=now + timedelta(hours=1))
        assert await workers.sweep_deadlines(db, grace) == 1
        assert "referral.reminder" in await events()
        overdue = await exchange.referral.get(
            "/referrals/overdue", headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        )
        assert [r["id"] for r in overdue.json()["items"]] == [created["id"]]
        await shift(respond_by=now - timedelta(minutes=5))
        assert await workers.sweep_deadlines(db, grace) == 1
        assert "referral.escalated" in await events()
        assert await workers.sweep_deadlines(db, grace) == 0  # nothing new to do
        await shift(respond_by=now - grace - timedelta(minutes=5))
        assert await workers.sweep_deadlines(db, grace) == 1
        final = (
            await exchange.referral.get(
                f"/referrals/{created['id']}",
                headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
            )
        ).json()
        assert final["status"] == "cancelled"
        assert final["status_reason"] == "no-response"


class TestPaging:
    async def test_lists_page_with_cursors_and_refuse_forged_ones(self, exchange: Exchange) -> None:
        for n in range(3):
            subject = f"hof-paging-subject-{n:04d}"
            await record_consent(exchange, REQUESTED, subject=subject)
            assert (await send(exchange, referral_body(subject_ref=subject))).status_code == 201
        host = exchange.as_role("host_office", HOST_OFFICE_ORG)
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await exchange.referral.get("/referrals", params=params, headers=host)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 3
        forged = await exchange.referral.get(
            "/referrals", params={"cursor": "bm9wZQ"}, headers=host
        )
        assert forged.status_code == 422
        assert forged.json()["type"] == "urn:refex:problem:invalid-cursor"


class TestOpenReferrals:
    OPEN = {
        "service_category": "health",
        "country": "NG",
        "admin_area": "NG-LA",
        "requested_categories": ["identity.basic", "contact", "health.physical"],
    }

    async def test_the_coordinator_assigns_and_the_sender_submits(self, exchange: Exchange) -> None:
        host = exchange.as_role("host_office", HOST_OFFICE_ORG)
        coordinator = exchange.as_role("coordinator", COORDINATOR_ORG)
        opened = await exchange.referral.post("/referrals/open", json=self.OPEN, headers=host)
        assert opened.status_code == 201, opened.text
        open_id = opened.json()["id"]
        assert opened.json()["coordinator_org_id"] == str(COORDINATOR_ORG)
        inbox = (await exchange.referral.get("/referrals/open", headers=coordinator)).json()
        assert [o["id"] for o in inbox] == [open_id]
        early = await exchange.referral.post(
            f"/referrals/open/{open_id}/submit",
            headers=host,
            json={"subject_ref": SUBJECT, "casefile": CASEFILE},
        )
        assert early.status_code == 409
        assigned = await exchange.referral.post(
            f"/referrals/open/{open_id}/assign",
            headers=coordinator,
            json={"service_id": str(DEMO_HEALTH_SERVICE)},
        )
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["status"] == "assigned"
        await record_consent(exchange, ["identity.basic", "contact", "health.physical"])
        submitted = await exchange.referral.post(
            f"/referrals/open/{open_id}/submit",
            headers=host,
            json={"subject_ref": SUBJECT, "casefile": CASEFILE},
        )
        assert submitted.status_code == 201, submitted.text
        referral = submitted.json()
        assert referral["recipient_org_id"] == str(HEALTH_PROVIDER_ORG)
        assert referral["shared_categories"] == ["contact", "health.physical", "identity.basic"]

    async def test_only_the_coordinator_assigns_and_only_to_members(
        self, exchange: Exchange
    ) -> None:
        host = exchange.as_role("host_office", HOST_OFFICE_ORG)
        opened = (
            await exchange.referral.post("/referrals/open", json=self.OPEN, headers=host)
        ).json()
        stranger = await exchange.referral.post(
            f"/referrals/open/{opened['id']}/assign",
            headers=exchange.as_role("coordinator", uuid.uuid4()),
            json={"service_id": str(DEMO_HEALTH_SERVICE)},
        )
        assert stranger.status_code == 404
        wrong_category = await exchange.referral.post(
            f"/referrals/open/{opened['id']}/assign",
            headers=exchange.as_role("coordinator", COORDINATOR_ORG),
            json={"service_id": str(DEMO_MENTAL_HEALTH_SERVICE)},
        )
        assert wrong_category.status_code == 422

    async def test_open_referrals_carry_no_case_file(self, exchange: Exchange) -> None:
        response = await exchange.referral.post(
            "/referrals/open",
            json={**self.OPEN, "casefile": CASEFILE},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 422
        assert "CANARY" not in response.text


class TestAnswersInTheCallersLanguage:
    @pytest.mark.parametrize("accept", ["fr-SN;q=0.9,en;q=0.5", "de"])
    async def test_withheld_reasons_and_first_contact_warnings_are_explained(
        self, exchange: Exchange, accept: str
    ) -> None:
        await record_consent(exchange, REQUESTED)
        response = await send(exchange, headers={"Accept-Language": accept})
        assert response.status_code == 201, response.text
        body = response.json()
        french = accept.startswith("fr")
        assert response.headers["content-language"] == ("fr" if french else "en")
        withheld = {w["category"]: w for w in body["withheld"]}
        assert withheld["health.mental"]["reason"] == "not_in_sop"  # codes never change
        assert withheld["health.mental"]["explanation"] == (
            "L'accord (SOP) avec ce prestataire ne permet pas de partager cette catégorie pour "
            "ce service."
            if french
            else "The agreement (SOP) with this provider does not permit sharing this category "
            "for this service."
        )
        assert withheld["protection"]["explanation"].startswith(
            "Le dossier contient" if french else "The case file holds"
        )
        [warning] = [w for w in body["warnings"] if "health.mental" in w]
        expected = "Le prestataire a besoin de health.mental" if french else "The provider needs"
        assert warning.startswith(expected)
        assert "(not_in_sop)" in warning

    async def test_a_refusal_with_placeholders_is_translated(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        assert (await send(exchange)).status_code == 201
        again = await send(exchange, headers={"Accept-Language": "fr"})
        assert again.status_code == 409, again.text
        problem = again.json()
        assert problem["type"] == "urn:refex:problem:duplicate-open-referral"
        assert problem["detail"].startswith(
            "Votre organisation a déjà une orientation active de cette personne de retour"
        )
        assert problem["existing_referral_id"] in problem["detail"]
        assert await stored(exchange) == 1
