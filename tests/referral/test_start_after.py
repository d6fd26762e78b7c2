"""Referrals sent before departure: due after arrival, the response clock waits for start_after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from services.consent.models import Disclosure
from services.referral import queries, sla, workers
from services.referral.models import OutboxEvent, Referral
from shared.demo import DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG
from tests.referral.conftest import SUBJECT, Exchange, record_consent
from tests.referral.test_referrals_api import REQUESTED, referral_body, send, stored
from tests.referral.test_sealed import preview, seal, send_sealed

PRE_DEPARTURE_SUBJECT = "hof-2026-predeparture-0001"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def disclosures(exchange: Exchange) -> int:
    async with exchange.consent_app.state.db.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(Disclosure))
        return int(count or 0)


async def send_both(exchange: Exchange, start_after: datetime) -> tuple[dict[str, Any], ...]:
    """One referral due now and one pre-departure referral, for two returnees."""
    await record_consent(exchange, REQUESTED)
    await record_consent(exchange, REQUESTED, subject=PRE_DEPARTURE_SUBJECT)
    now_due = await send(exchange)
    later = await send(
        exchange,
        referral_body(subject_ref=PRE_DEPARTURE_SUBJECT, start_after=iso(start_after)),
    )
    assert now_due.status_code == 201, now_due.text
    assert later.status_code == 201, later.text
    return now_due.json(), later.json()


class TestTheClockWaitsForStartAfter:
    async def test_deadlines_count_from_start_after(self, exchange: Exchange) -> None:
        start_after = datetime.now(UTC) + timedelta(days=10)
        now_due, later = await send_both(exchange, start_after)
        assert abs(datetime.fromisoformat(later["start_after"]) - start_after) < timedelta(
            seconds=1
        )
        assert datetime.fromisoformat(later["acknowledge_by"]) > start_after
        assert datetime.fromisoformat(later["respond_by"]) > start_after
        assert datetime.fromisoformat(now_due["respond_by"]) < start_after
        assert now_due["start_after"] is None

    async def test_no_reminder_and_not_overdue_before_start_after(
        self, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        now_due, later = await send_both(exchange, datetime.now(UTC) + timedelta(days=10))
        in_three_days = datetime.now(UTC) + timedelta(days=3)
        monkeypatch.setattr(sla, "utcnow", lambda: in_three_days)
        monkeypatch.setattr(queries, "utcnow", lambda: in_three_days)
        db = exchange.referral_app.state.db
        # Three days on, only the referral due at once was reminded or cancelled.
        assert await workers.sweep_deadlines(db, timedelta(days=30)) == 1
        async with db.sessionmaker() as session:
            events = (
                await session.execute(select(OutboxEvent.referral_id, OutboxEvent.event))
            ).all()
        later_events = [e for r, e in events if str(r) == later["id"]]
        assert later_events == ["referral.requested"]
        provider = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        overdue = await exchange.referral.get("/referrals/overdue", headers=provider)
        assert [r["id"] for r in overdue.json()["items"]] == [now_due["id"]]

    async def test_the_provider_may_prepare_before_start_after(self, exchange: Exchange) -> None:
        _, later = await send_both(exchange, datetime.now(UTC) + timedelta(days=10))
        provider = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        seen = await exchange.referral.get(f"/referrals/{later['id']}", headers=provider)
        assert seen.status_code == 200
        assert seen.json()["start_after"] == later["start_after"]
        acknowledged = await exchange.referral.post(
            f"/referrals/{later['id']}/status", headers=provider, json={"status": "received"}
        )
        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["status"] == "received"
        assert acknowledged.json()["respond_by"] == later["respond_by"]

    async def test_a_sealed_referral_takes_start_after_too(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        start_after = datetime.now(UTC) + timedelta(days=20)
        plan = await preview(exchange)
        response = await send_sealed(exchange, plan, seal(plan), start_after=iso(start_after))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["payload_mode"] == "sealed"
        assert datetime.fromisoformat(body["acknowledge_by"]) > start_after


class TestStartAfterIsChecked:
    @pytest.mark.parametrize(
        ("shift", "says"),
        [(timedelta(hours=-1), "in the past"), (timedelta(days=400), "days ahead")],
    )
    async def test_in_the_past_or_too_far_ahead_is_refused_and_nothing_stored(
        self, exchange: Exchange, shift: timedelta, says: str
    ) -> None:
        await record_consent(exchange, REQUESTED)
        response = await send(exchange, referral_body(start_after=iso(datetime.now(UTC) + shift)))
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"] == "urn:refex:problem:start-after-invalid"
        assert says in problem["detail"]
        assert await stored(exchange) == 0
        assert await disclosures(exchange) == 0

    async def test_a_small_clock_skew_is_accepted(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        response = await send(
            exchange, referral_body(start_after=iso(datetime.now(UTC) - timedelta(minutes=2)))
        )
        assert response.status_code == 201, response.text

    async def test_a_start_after_the_consent_ends_is_refused(self, exchange: Exchange) -> None:
        until = datetime.now(UTC) + timedelta(days=30)
        await record_consent(exchange, REQUESTED, valid_until=iso(until))
        response = await send(exchange, referral_body(start_after=iso(until + timedelta(days=1))))
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "urn:refex:problem:start-after-invalid"
        assert "consent" in response.json()["detail"]
        assert await stored(exchange) == 0
        assert await disclosures(exchange) == 0
        within = await send(exchange, referral_body(start_after=iso(until - timedelta(days=1))))
        assert within.status_code == 201, within.text

    async def test_a_time_without_a_zone_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        response = await send(exchange, referral_body(start_after="2027-03-01T08:00:00"))
        assert response.status_code == 422
        assert await stored(exchange) == 0

    async def test_the_refusal_is_explained_in_french(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        response = await send(
            exchange,
            referral_body(start_after=iso(datetime.now(UTC) - timedelta(days=1))),
            headers={"Accept-Language": "fr"},
        )
        assert response.status_code == 422
        assert "passé" in response.json()["detail"]


class TestPreviewAndReports:
    async def test_the_preview_checks_start_after_too(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        response = await exchange.referral.post(
            "/referrals/preview",
            json={
                "service_id": str(DEMO_HEALTH_SERVICE),
                "subject_ref": SUBJECT,
                "requested_categories": REQUESTED,
                "start_after": iso(datetime.now(UTC) - timedelta(days=2)),
            },
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 422
        assert response.json()["type"] == "urn:refex:problem:start-after-invalid"

    async def test_times_to_answer_count_from_when_the_referral_became_due(
        self, exchange: Exchange
    ) -> None:
        _, later = await send_both(exchange, datetime.now(UTC) + timedelta(days=10))
        sent_at = datetime.now(UTC) - timedelta(days=20)
        due = sent_at + timedelta(days=10)
        async with exchange.referral_app.state.db.sessionmaker() as session, session.begin():
            await session.execute(
                update(Referral)
                .where(Referral.id == uuid.UUID(later["id"]))
                .values(
                    created_at=sent_at,
                    start_after=due,
                    acknowledged_at=due + timedelta(hours=2),
                    accepted_at=sent_at + timedelta(days=1),  # prepared before it was due
                    status="accepted",
                )
            )
        stats = await exchange.referral.get(
            "/referrals/stats", headers=exchange.as_role("host_office", HOST_OFFICE_ORG)
        )
        assert stats.status_code == 200, stats.text
        body = stats.json()
        assert body["median_hours_to_acknowledge"] == pytest.approx(2.0, abs=0.01)
        assert body["median_hours_to_accept"] == pytest.approx(0.0, abs=0.01)
