"""Coordinators follow the referrals they routed: metadata only, and one notice when one stalls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from services.referral.following import sweep_stalled
from services.referral.models import AuditEvent, OutboxEvent, Referral
from services.referral.notifications import webhook_body
from shared.demo import COORDINATOR_ORG, DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

OPEN = {
    "service_category": "health",
    "country": "NG",
    "admin_area": "NG-LA",
    "requested_categories": ["identity.basic", "contact", "health.physical"],
}
FOLLOWED = "/referrals/open/followed"


async def routed(
    exchange: Exchange, *, submit: bool = True, start_after: str | None = None
) -> dict[str, Any]:
    """An open referral the coordinator assigned and (when `submit`) the sender submitted."""
    host = exchange.as_role("host_office", HOST_OFFICE_ORG)
    opened = (await exchange.referral.post("/referrals/open", json=OPEN, headers=host)).json()
    assigned = await exchange.referral.post(
        f"/referrals/open/{opened['id']}/assign",
        headers=exchange.as_role("coordinator", COORDINATOR_ORG),
        json={"service_id": str(DEMO_HEALTH_SERVICE)},
    )
    assert assigned.status_code == 200, assigned.text
    if not submit:
        return dict(assigned.json())
    await record_consent(exchange, OPEN["requested_categories"])
    submitted = await exchange.referral.post(
        f"/referrals/open/{opened['id']}/submit",
        headers=host,
        json={
            "subject_ref": SUBJECT,
            "casefile": CASEFILE,
            **({"start_after": start_after} if start_after else {}),
        },
    )
    assert submitted.status_code == 201, submitted.text
    return {"open_id": opened["id"], "referral": submitted.json()}


async def followed(exchange: Exchange, org: object = COORDINATOR_ORG) -> Any:
    return await exchange.referral.get(FOLLOWED, headers=exchange.as_role("coordinator", org))


async def make_late(exchange: Exchange, referral_id: str) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    async with exchange.referral_app.state.db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Referral)
            .where(Referral.id == uuid.UUID(referral_id))
            .values(acknowledge_by=past)
        )


async def stalled_events(exchange: Exchange) -> list[OutboxEvent]:
    async with exchange.referral_app.state.db.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.event == "referral.stalled")
        )
        return list(rows)


class TestFollowedReferrals:
    async def test_the_coordinator_sees_status_and_deadlines_never_the_payload(
        self, exchange: Exchange
    ) -> None:
        sent = await routed(exchange)
        response = await followed(exchange)
        assert response.status_code == 200, response.text
        [item] = response.json()["items"]
        referral = sent["referral"]
        assert item["open_referral_id"] == sent["open_id"]
        assert item["referral_id"] == referral["id"]
        assert item["assigned_org_id"] == str(HEALTH_PROVIDER_ORG)
        assert (item["status"], item["acknowledge_by"], item["respond_by"]) == (
            "requested",
            referral["acknowledge_by"],
            referral["respond_by"],
        )
        assert item["overdue"] is False and item["stalled_at"] is None
        for leaked in ("payload", "feedback", "encrypted_to", "shared_categories", "withheld"):
            assert leaked not in item
        for marker in ("ciphertext", "encrypted_key", "protected", "CANARY"):
            assert marker not in response.text

    async def test_an_assigned_but_not_yet_submitted_referral_is_listed_without_status(
        self, exchange: Exchange
    ) -> None:
        await routed(exchange, submit=False)
        [item] = (await followed(exchange)).json()["items"]
        assert (item["open_status"], item["referral_id"], item["status"]) == (
            "assigned",
            None,
            None,
        )

    async def test_the_status_follows_the_providers_moves(self, exchange: Exchange) -> None:
        sent = await routed(exchange)
        moved = await exchange.referral.post(
            f"/referrals/{sent['referral']['id']}/status",
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
            json={"status": "accepted"},
        )
        assert moved.status_code == 200
        [item] = (await followed(exchange)).json()["items"]
        assert item["status"] == "accepted" and item["accepted_at"] is not None

    async def test_other_coordinators_see_nothing(self, exchange: Exchange) -> None:
        await routed(exchange)
        response = await followed(exchange, uuid.uuid4())
        assert response.status_code == 200
        assert response.json()["items"] == []

    @pytest.mark.parametrize(
        ("role", "org"),
        [("host_office", HOST_OFFICE_ORG), ("provider", HEALTH_PROVIDER_ORG), ("auditor", None)],
    )
    async def test_only_coordinators_follow(
        self, exchange: Exchange, role: str, org: object
    ) -> None:
        await routed(exchange)
        response = await exchange.referral.get(
            FOLLOWED, headers=exchange.as_role(role, org or uuid.uuid4())
        )
        assert response.status_code == 403

    async def test_the_list_pages_and_refuses_a_forged_cursor(self, exchange: Exchange) -> None:
        for _ in range(3):
            await routed(exchange, submit=False)
        coordinator = exchange.as_role("coordinator", COORDINATOR_ORG)
        first = await exchange.referral.get(FOLLOWED, params={"limit": 2}, headers=coordinator)
        cursor = first.json()["next_cursor"]
        assert len(first.json()["items"]) == 2 and cursor
        rest = await exchange.referral.get(
            FOLLOWED, params={"limit": 2, "cursor": cursor}, headers=coordinator
        )
        ids = [i["open_referral_id"] for i in first.json()["items"] + rest.json()["items"]]
        assert len(ids) == len(set(ids)) == 3 and rest.json()["next_cursor"] is None
        forged = await exchange.referral.get(
            FOLLOWED, params={"cursor": "bm9wZQ"}, headers=coordinator
        )
        assert forged.status_code == 422


class TestStalls:
    async def test_a_referral_past_its_deadline_is_reported_once(self, exchange: Exchange) -> None:
        sent = await routed(exchange)
        db = exchange.referral_app.state.db
        assert await sweep_stalled(db) == 0  # on time: nothing to say
        await make_late(exchange, sent["referral"]["id"])
        assert await sweep_stalled(db) == 1
        assert await sweep_stalled(db) == 0
        [event] = await stalled_events(exchange)
        assert event.target_org_id == COORDINATOR_ORG
        assert str(event.referral_id) == sent["referral"]["id"]
        body = orjson.loads(webhook_body(event))
        assert set(body) == {"event_id", "event", "referral_id", "status", "occurred_at"}
        assert body["event"] == "referral.stalled"
        [item] = (await followed(exchange)).json()["items"]
        assert item["stalled_at"] is not None and item["overdue"] is True
        async with db.sessionmaker() as session:
            actions = list(
                await session.scalars(
                    select(AuditEvent.action).where(
                        AuditEvent.referral_id == uuid.UUID(sent["referral"]["id"])
                    )
                )
            )
        assert actions.count("referral.stalled") == 1

    async def test_an_acknowledged_referral_on_time_does_not_stall(
        self, exchange: Exchange
    ) -> None:
        sent = await routed(exchange)
        await make_late(exchange, sent["referral"]["id"])  # late to acknowledge...
        acknowledged = await exchange.referral.post(
            f"/referrals/{sent['referral']['id']}/status",
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
            json={"status": "received"},
        )
        assert acknowledged.status_code == 200  # ...but it was, and respond_by is ahead
        assert await sweep_stalled(exchange.referral_app.state.db) == 0
        assert await stalled_events(exchange) == []

    async def test_referrals_nobody_routed_never_stall_to_a_coordinator(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, OPEN["requested_categories"])
        direct = await exchange.referral.post(
            "/referrals",
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
            json={
                "service_id": str(DEMO_HEALTH_SERVICE),
                "subject_ref": SUBJECT,
                "requested_categories": OPEN["requested_categories"],
                "casefile": CASEFILE,
            },
        )
        assert direct.status_code == 201
        await make_late(exchange, direct.json()["id"])
        assert await sweep_stalled(exchange.referral_app.state.db) == 0

    async def test_a_routed_referral_due_after_arrival_does_not_stall_before(
        self, exchange: Exchange
    ) -> None:
        later = datetime.now(UTC) + timedelta(days=10)
        sent = await routed(exchange, start_after=later.isoformat())
        assert datetime.fromisoformat(sent["referral"]["acknowledge_by"]) > later
        assert await sweep_stalled(exchange.referral_app.state.db) == 0
        [item] = (await followed(exchange)).json()["items"]
        assert item["start_after"] is not None and item["overdue"] is False
