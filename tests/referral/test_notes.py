"""Notes and feedback reach the other party only while the basis for sharing holds, and within
the caps on their number and size."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from services.consent.models import Consent
from services.referral.models import AuditEvent, OutboxEvent, Referral, ReferralNote
from services.referral.settings import ReferralSettings
from shared.contracts.directory import AgreementRead
from shared.demo import DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

REQUESTED = ["identity.basic", "contact", "health.physical"]


async def create(exchange: Exchange) -> tuple[str, str]:
    """Send a referral on a fresh consent; return the referral id and the consent id."""
    consent_id = await record_consent(exchange, REQUESTED)
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
    return response.json()["id"], consent_id


async def note(exchange: Exchange, referral_id: str, text: str = "Appointment booked.") -> Any:
    return await exchange.referral.post(
        f"/referrals/{referral_id}/notes",
        json={"text": text},
        headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
    )


async def snapshot(exchange: Exchange, referral_id: str) -> tuple[int, int, int, int]:
    """Notes, audit rows, outbox events and the referral's version, to show nothing changed."""
    async with exchange.referral_app.state.db.sessionmaker() as session:
        counts = [
            int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (ReferralNote, AuditEvent, OutboxEvent)
        ]
        referral = await session.get(Referral, uuid.UUID(referral_id))
        assert referral is not None
        return counts[0], counts[1], counts[2], referral.version


async def withdraw(exchange: Exchange, consent_id: str) -> None:
    response = await exchange.consent.post(
        f"/consents/{consent_id}/withdraw",
        json={"reason": "returnee_request"},
        headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
    )
    assert response.status_code == 200, response.text


async def expire(exchange: Exchange, consent_id: str) -> None:
    """Let the consent's validity end, as if its end date had passed."""
    async with exchange.consent_app.state.db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Consent)
            .where(Consent.id == uuid.UUID(consent_id))
            .values(valid_until=datetime.now(UTC) - timedelta(minutes=1))
        )


def end_agreement(exchange: Exchange) -> None:
    """The directory answers that the referral's agreement ended yesterday."""
    directory = exchange.referral_app.state.clients.directory
    real = directory.agreement

    async def ended(agreement_id: uuid.UUID, *, request_id: str | None) -> AgreementRead | None:
        agreement = await real(agreement_id, request_id=request_id)
        assert agreement is not None
        yesterday = datetime.now(UTC) - timedelta(days=1)
        return agreement.model_copy(update={"valid_until": yesterday})

    directory.agreement = ended


def assert_basis_ended(response: Any, reason: str) -> None:
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "urn:refex:problem:basis-ended"
    assert problem["reason"] == reason
    assert "new consent" in problem["detail"]


class TestNotesRespectTheBasis:
    async def test_a_note_goes_through_while_consent_and_agreement_hold(
        self, exchange: Exchange
    ) -> None:
        referral_id, _ = await create(exchange)
        assert (await note(exchange, referral_id)).status_code == 201

    @pytest.mark.promise(8)
    async def test_a_withdrawn_consent_stops_notes_even_before_the_referral_is_cancelled(
        self, exchange: Exchange
    ) -> None:
        referral_id, consent_id = await create(exchange)
        await withdraw(exchange, consent_id)  # the referral service has not heard of it yet
        before = await snapshot(exchange, referral_id)
        assert_basis_ended(await note(exchange, referral_id), "consent-withdrawn")
        assert await snapshot(exchange, referral_id) == before

    @pytest.mark.promise(8)
    async def test_an_expired_consent_stops_notes(self, exchange: Exchange) -> None:
        referral_id, consent_id = await create(exchange)
        await expire(exchange, consent_id)
        before = await snapshot(exchange, referral_id)
        assert_basis_ended(await note(exchange, referral_id), "consent-expired")
        assert await snapshot(exchange, referral_id) == before

    @pytest.mark.promise(8)
    async def test_an_ended_agreement_stops_notes(self, exchange: Exchange) -> None:
        referral_id, _ = await create(exchange)
        end_agreement(exchange)
        before = await snapshot(exchange, referral_id)
        assert_basis_ended(await note(exchange, referral_id), "agreement-ended")
        assert await snapshot(exchange, referral_id) == before


class TestFeedbackRespectsTheBasis:
    @pytest.mark.promise(8)
    async def test_a_feedback_comment_is_refused_but_completion_without_it_works(
        self, exchange: Exchange
    ) -> None:
        referral_id, consent_id = await create(exchange)
        provider = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        path = f"/referrals/{referral_id}/status"
        for status in ("accepted", "in-progress"):
            moved = await exchange.referral.post(path, json={"status": status}, headers=provider)
            assert moved.status_code == 200, moved.text
        await expire(exchange, consent_id)
        before = await snapshot(exchange, referral_id)
        completion: dict[str, Any] = {"status": "completed", "outcome": "got-help"}
        refused = await exchange.referral.post(
            path,
            json=completion | {"feedback": {"score": 4, "comment": "Kind staff"}},
            headers=provider,
        )
        assert_basis_ended(refused, "consent-expired")
        assert await snapshot(exchange, referral_id) == before
        done = await exchange.referral.post(
            path, json=completion | {"feedback": {"score": 4}}, headers=provider
        )
        assert done.status_code == 200, done.text
        assert done.json()["feedback_score"] == 4 and done.json()["feedback"] is None


class TestNoteCaps:
    @pytest.mark.promise(8)
    async def test_a_note_longer_than_the_cap_is_413_and_stores_nothing(
        self, exchange: Exchange
    ) -> None:
        referral_id, _ = await create(exchange)
        limit = exchange.referral_app.state.settings.note_max_chars
        before = await snapshot(exchange, referral_id)
        too_long = await note(exchange, referral_id, "x" * (limit + 1))
        assert too_long.status_code == 413, too_long.text
        problem = too_long.json()
        assert problem["type"] == "urn:refex:problem:note-too-long"
        assert problem["max_chars"] == limit and str(limit) in problem["detail"]
        assert await snapshot(exchange, referral_id) == before
        assert (await note(exchange, referral_id, "x" * limit)).status_code == 201

    @pytest.mark.promise(8)
    async def test_notes_beyond_the_cap_are_409_and_store_nothing(self, exchange: Exchange) -> None:
        state = exchange.referral_app.state
        state.settings = state.settings.model_copy(update={"notes_max_per_referral": 2})
        referral_id, _ = await create(exchange)
        for _ in range(2):
            assert (await note(exchange, referral_id)).status_code == 201
        before = await snapshot(exchange, referral_id)
        third = await note(exchange, referral_id)
        assert third.status_code == 409, third.text
        assert third.json()["type"] == "urn:refex:problem:note-limit-reached"
        assert third.json()["max_notes"] == 2
        assert await snapshot(exchange, referral_id) == before

    def test_the_caps_are_settings_with_safe_bounds(self) -> None:
        with pytest.raises(ValidationError):
            ReferralSettings(environment="test", note_max_chars=200_001)
        with pytest.raises(ValidationError):
            ReferralSettings(environment="test", notes_max_per_referral=0)
