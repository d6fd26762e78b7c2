"""Withdrawal notices reach the referral service through the outbox, even after an outage."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI
from sqlalchemy import select, update

from services.consent.app import create_app
from services.consent.clients import ReferralClient
from services.consent.models import OutboxEvent
from services.consent.outbox import withdrawal_outbox
from services.consent.settings import ConsentSettings
from shared.http import StaticToken
from shared.outbox import OutboxPolicy
from tests.consent.conftest import HOST_ORG, PLATFORM_ORG, SUBJECT, Callers, grant

SERVICE_TOKEN = "service-token-for-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """A real HTTP server standing in for the referral service's internal endpoint."""

    def __init__(self, port: int, failures: int = 0) -> None:
        self.port = port
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.failures:
            self.failures -= 1
            return web.json_response({"detail": "busy"}, status=503)
        self.authorizations.append(request.headers.get("Authorization", ""))
        self.received.append(await request.json())
        return web.json_response({}, status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/internal/consent-withdrawals", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
def receiver_port() -> int:
    return free_port()


@pytest.fixture
def outbox_app(consent_settings: Callable[..., ConsentSettings], receiver_port: int) -> FastAPI:
    settings = consent_settings(
        workers_enabled=True,
        referral_url=f"http://127.0.0.1:{receiver_port}",
        outbox_poll_interval_s=0.05,
        outbox_backoff_base_s=0.05,
        outbox_backoff_cap_s=0.2,
    )
    return create_app(settings, tokens=StaticToken(SERVICE_TOKEN))


@asynccontextmanager
async def running(receiver: Receiver) -> AsyncIterator[Receiver]:
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def outbox_rows(app: FastAPI) -> list[OutboxEvent]:
    async with app.state.db.sessionmaker() as session:
        return list((await session.scalars(select(OutboxEvent))).all())


async def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def withdraw(client: httpx.AsyncClient, callers: Callers, consent_id: str) -> None:
    response = await client.post(
        f"/consents/{consent_id}/withdraw",
        json={"reason": "returnee_request"},
        headers=callers.host(),
    )
    assert response.status_code == 200


InProcess = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


class TestWithdrawalNotices:
    async def test_the_referral_service_is_told_with_a_service_token(
        self, outbox_app: FastAPI, in_process: InProcess, callers: Callers, receiver_port: int
    ) -> None:
        async with running(Receiver(receiver_port)) as receiver, in_process(outbox_app) as client:
            consent = await grant(client, callers)
            await withdraw(client, callers, consent["id"])

            async def delivered() -> bool:
                rows = await outbox_rows(outbox_app)
                return bool(rows) and all(r.delivered_at is not None for r in rows)

            await eventually(delivered)
        [event] = receiver.received
        assert set(event) == {
            "event_id",
            "consent_id",
            "subject_ref",
            "sender_org_id",
            "withdrawn_at",
            "reason",
        }
        assert event["consent_id"] == consent["id"]
        assert event["subject_ref"] == SUBJECT
        assert event["sender_org_id"] == HOST_ORG
        assert event["reason"] == "returnee_request"
        assert receiver.authorizations == [f"Bearer {SERVICE_TOKEN}"]
        [row] = await outbox_rows(outbox_app)
        assert str(row.id) == event["event_id"]
        assert row.attempts == 1

    async def test_nothing_is_lost_while_the_referral_service_is_down(
        self, outbox_app: FastAPI, in_process: InProcess, callers: Callers, receiver_port: int
    ) -> None:
        async with in_process(outbox_app) as client:
            consents = [await grant(client, callers) for _ in range(3)]
            for consent in consents:
                await withdraw(client, callers, consent["id"])

            async def retried() -> bool:
                rows = await outbox_rows(outbox_app)
                return len(rows) == 3 and all(r.attempts >= 2 for r in rows)

            await eventually(retried)
            rows = await outbox_rows(outbox_app)
            assert all(r.delivered_at is None and r.last_error for r in rows)
            async with running(Receiver(receiver_port)) as receiver:

                async def delivered() -> bool:
                    return all(r.delivered_at is not None for r in await outbox_rows(outbox_app))

                await eventually(delivered)
        assert sorted(e["consent_id"] for e in receiver.received) == sorted(
            c["id"] for c in consents
        )

    async def test_a_failing_receiver_is_retried_until_it_accepts(
        self, outbox_app: FastAPI, in_process: InProcess, callers: Callers, receiver_port: int
    ) -> None:
        receiver = Receiver(receiver_port, failures=2)
        async with running(receiver), in_process(outbox_app) as client:
            consent = await grant(client, callers)
            await withdraw(client, callers, consent["id"])

            async def delivered() -> bool:
                rows = await outbox_rows(outbox_app)
                return bool(rows) and rows[0].delivered_at is not None

            await eventually(delivered)
        [row] = await outbox_rows(outbox_app)
        assert row.attempts == 3
        assert len(receiver.received) == 1

    async def test_a_refused_withdrawal_writes_no_notice(
        self, outbox_app: FastAPI, in_process: InProcess, callers: Callers
    ) -> None:
        async with in_process(outbox_app) as client:
            consent = await grant(client, callers)
            await withdraw(client, callers, consent["id"])
            again = await client.post(
                f"/consents/{consent['id']}/withdraw",
                json={"reason": "other"},
                headers=callers.host(),
            )
            assert again.status_code == 409
            assert len(await outbox_rows(outbox_app)) == 1


class TestReplicas:
    async def test_two_workers_never_send_an_event_twice(
        self,
        consent_app: FastAPI,
        in_process: InProcess,
        callers: Callers,
        receiver_port: int,
    ) -> None:
        settings: ConsentSettings = consent_app.state.settings
        async with running(Receiver(receiver_port)) as receiver, in_process(consent_app) as client:
            for _ in range(8):
                consent = await grant(client, callers)
                await withdraw(client, callers, consent["id"])
            policy = OutboxPolicy.from_settings(settings)
            workers = [
                withdrawal_outbox(
                    sessionmaker=consent_app.state.db.sessionmaker,
                    client=ReferralClient(f"http://127.0.0.1:{receiver_port}"),
                    policy=dataclasses.replace(policy, batch_size=3),
                )
                for _ in range(2)
            ]
            for _ in range(4):
                await asyncio.gather(*(worker.deliver_due() for worker in workers))
        ids = [event["event_id"] for event in receiver.received]
        assert len(ids) == len(set(ids)) == 8


@pytest.fixture
def dead_letter_app(
    consent_settings: Callable[..., ConsentSettings], receiver_port: int
) -> FastAPI:
    """Workers off (the test drives each round), two attempts before a dead letter."""
    settings = consent_settings(
        referral_url=f"http://127.0.0.1:{receiver_port}", outbox_max_attempts=2
    )
    return create_app(settings, tokens=StaticToken(SERVICE_TOKEN))


async def make_due(app: FastAPI) -> None:
    async with app.state.db.sessionmaker() as session, session.begin():
        await session.execute(update(OutboxEvent).values(next_attempt_at=OutboxEvent.created_at))


def admin(callers: Callers) -> dict[str, str]:
    return callers.minter.headers(roles=["admin"], org=PLATFORM_ORG, client="steward")


class TestDeadLetters:
    async def test_an_undeliverable_notice_is_dead_lettered_listed_and_replayed(
        self,
        dead_letter_app: FastAPI,
        in_process: InProcess,
        callers: Callers,
        receiver_port: int,
    ) -> None:
        async with in_process(dead_letter_app) as client:
            outbox = dead_letter_app.state.outbox
            consent = await grant(client, callers)
            await withdraw(client, callers, consent["id"])
            for _ in range(2):  # the referral service is down: two failed attempts
                assert await outbox.deliver_due() == 1
                await make_due(dead_letter_app)
            assert await outbox.deliver_due() == 0  # dead letters are not retried
            listed = await client.get("/consents/deliveries/dead-letters", headers=admin(callers))
            assert listed.status_code == 200
            [dead] = listed.json()
            assert dead["consent_id"] == consent["id"] and dead["attempts"] == 2
            assert dead["event"] == "consent.withdrawn" and dead["last_error"]
            assert SUBJECT not in listed.text  # ids and error codes only
            await outbox.refresh_gauges()
            metrics = (await client.get("/metrics")).text
            assert (
                'refex_outbox_dead_letters{outbox="withdrawals",service="consent"} 1.0' in metrics
            )
            replay = await client.post(
                f"/consents/deliveries/{dead['event_id']}/replay", headers=admin(callers)
            )
            assert replay.status_code == 202
            async with running(Receiver(receiver_port)) as receiver:
                assert await outbox.deliver_due() == 1
        assert [event["consent_id"] for event in receiver.received] == [consent["id"]]
        [row] = await outbox_rows(dead_letter_app)
        assert row.delivered_at is not None and row.dead_at is None and row.attempts == 1

    async def test_replaying_what_is_not_a_dead_letter_is_a_404_and_changes_nothing(
        self, dead_letter_app: FastAPI, in_process: InProcess, callers: Callers
    ) -> None:
        async with in_process(dead_letter_app) as client:
            consent = await grant(client, callers)
            await withdraw(client, callers, consent["id"])
            [before] = await outbox_rows(dead_letter_app)
            for event_id in (str(before.id), "0192f000-0000-7000-8000-0000000000ff"):
                response = await client.post(
                    f"/consents/deliveries/{event_id}/replay", headers=admin(callers)
                )
                assert response.status_code == 404
                assert response.json()["type"] == "urn:refex:problem:dead-letter-not-found"
            [after] = await outbox_rows(dead_letter_app)
        assert (after.attempts, after.next_attempt_at, after.dead_at) == (
            before.attempts,
            before.next_attempt_at,
            before.dead_at,
        )

    async def test_only_admins_see_or_replay_dead_letters(
        self, dead_letter_app: FastAPI, in_process: InProcess, callers: Callers
    ) -> None:
        async with in_process(dead_letter_app) as client:
            for headers in (callers.host(), callers.auditor(), callers.service()):
                listed = await client.get("/consents/deliveries/dead-letters", headers=headers)
                assert listed.status_code == 403
                replay = await client.post(
                    "/consents/deliveries/0192f000-0000-7000-8000-0000000000ff/replay",
                    headers=headers,
                )
                assert replay.status_code == 403
