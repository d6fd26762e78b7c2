"""A withdrawal racing a referral's creation never lets the provider read the payload."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from services.referral.clients import ConsentClient
from services.referral.models import AuditEvent, IdempotencyRecord, OutboxEvent, Referral
from shared.demo import AUDITOR_ORG, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG, PLATFORM_ORG
from tests.referral.conftest import SUBJECT, Exchange, record_consent
from tests.referral.test_referrals_api import REQUESTED, referral_body, send, stored

Call = Callable[..., Awaitable[dict[str, Any]]]


async def withdraw(exchange: Exchange, consent_id: str) -> None:
    response = await exchange.consent.post(
        f"/consents/{consent_id}/withdraw",
        json={"reason": "returnee_request"},
        headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
    )
    assert response.status_code == 200, response.text


def notify_referral(exchange: Exchange, consent_id: str) -> Awaitable[httpx.Response]:
    """What the consent service's outbox delivers to the referral service."""
    return exchange.referral.post(
        "/internal/consent-withdrawals",
        headers=exchange.minter.headers(roles=["service"], org=str(PLATFORM_ORG)),
        json={
            "event_id": str(uuid.uuid4()),
            "consent_id": consent_id,
            "subject_ref": SUBJECT,
            "withdrawn_at": "2026-11-25T10:00:00Z",
        },
    )


def after(original: Call, step: Callable[[], Awaitable[None]]) -> Call:
    """Wrap a client call so `step` runs right after it answered."""

    async def wrapped(self: ConsentClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = await original(self, *args, **kwargs)
        await step()
        return answer

    return wrapped


async def provider_sees(exchange: Exchange, **params: str) -> list[dict[str, Any]]:
    response = await exchange.referral.get(
        "/referrals", params=params, headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG)
    )
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestWithdrawalDuringCreation:
    @pytest.mark.promise(1)
    async def test_a_withdrawal_after_the_decision_refuses_the_create_and_stores_nothing(
        self, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        consent_id = await record_consent(exchange, REQUESTED)
        notices: list[asyncio.Task[httpx.Response]] = []

        async def withdrawal() -> None:
            await withdraw(exchange, consent_id)
            notices.append(asyncio.ensure_future(notify_referral(exchange, consent_id)))

        monkeypatch.setattr(ConsentClient, "decide", after(ConsentClient.decide, withdrawal))
        response = await send(exchange, headers={"Idempotency-Key": "race-key-0001"})
        assert response.status_code == 409, response.text
        [notice] = notices
        assert (await notice).json()["cancelled_referral_ids"] == []
        problem = response.json()
        assert problem["type"] == "urn:refex:problem:consent-ended-while-sending"
        assert "nothing was sent" in problem["detail"]
        assert "CANARY" not in response.text
        for model in (Referral, AuditEvent, OutboxEvent):
            assert await stored(exchange, model) == 0, model
        assert await stored(exchange, IdempotencyRecord) == 0  # a retry may use the key again
        assert await provider_sees(exchange) == []
        disclosures = await exchange.consent.get(
            f"/subjects/{SUBJECT}/disclosures", headers=exchange.as_role("auditor", AUDITOR_ORG)
        )
        assert disclosures.json()["items"] == []

    @pytest.mark.promise(1)
    async def test_a_withdrawal_after_the_disclosure_cancels_the_referral_once_it_is_stored(
        self, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        consent_id = await record_consent(exchange, REQUESTED)
        notices: list[asyncio.Task[httpx.Response]] = []

        async def withdrawal() -> None:
            await withdraw(exchange, consent_id)
            notices.append(asyncio.ensure_future(notify_referral(exchange, consent_id)))
            # Give the notice every chance to be handled before this referral commits: with the
            # subject lock it waits for the commit, without it it finds nothing to cancel.
            await asyncio.wait(notices, timeout=1.5)

        monkeypatch.setattr(
            ConsentClient, "record_disclosure", after(ConsentClient.record_disclosure, withdrawal)
        )
        created = await send(exchange, referral_body())
        assert created.status_code == 201, created.text
        [notice] = notices
        handled = await notice
        assert handled.status_code == 200
        assert handled.json()["cancelled_referral_ids"] == [created.json()["id"]]
        [seen] = await provider_sees(exchange)
        assert seen["status"] == "cancelled"
        assert seen["status_reason"] == "consent-withdrawn"


class TestAfterWithdrawal:
    @pytest.mark.promise(1)
    async def test_the_recipient_no_longer_reads_the_content_the_sender_still_does(
        self, exchange: Exchange
    ) -> None:
        consent_id = await record_consent(exchange, REQUESTED)
        created = await send(exchange, referral_body())
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        provider = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        note = await exchange.referral.post(
            f"/referrals/{referral_id}/notes", json={"text": "first contact"}, headers=provider
        )
        assert note.status_code == 201, note.text
        await withdraw(exchange, consent_id)
        assert (await notify_referral(exchange, consent_id)).status_code == 200
        seen = (await exchange.referral.get(f"/referrals/{referral_id}", headers=provider)).json()
        assert seen["status_reason"] == "consent-withdrawn"
        assert seen["payload"] is None
        assert any("withdrew the consent" in w for w in seen["warnings"])
        notes = await exchange.referral.get(f"/referrals/{referral_id}/notes", headers=provider)
        assert notes.status_code == 409
        assert notes.json()["type"] == "urn:refex:problem:content-withdrawn"
        [listed] = await provider_sees(exchange, include="payload")
        assert listed["payload"] is None and listed["feedback"] is None
        sender = exchange.as_role("host_office", HOST_OFFICE_ORG)
        own = (await exchange.referral.get(f"/referrals/{referral_id}", headers=sender)).json()
        assert own["payload"] is not None
