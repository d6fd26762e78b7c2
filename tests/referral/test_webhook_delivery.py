"""Webhook delivery to a real local HTTP receiver: outages, back-off and a restarted service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy import text

from services.referral import workers
from services.referral.app import create_app as create_referral
from services.stack import free_port
from shared.webhooks import SIGNATURE_HEADER, verify_body
from tests.referral.conftest import REQUESTED_DEFAULT, Exchange, record_consent
from tests.referral.test_referrals_api import send


class Receiver:
    """A partner's webhook endpoint on a real port, which can be taken down and brought back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[tuple[bytes, str]] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append((await request.read(), request.headers[SIGNATURE_HEADER]))
        return web.Response(status=204)

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    yield receiver
    await receiver.down()


async def point_webhooks_at(exchange: Exchange, url: str) -> None:
    async with exchange.referral_app.state.db.engine.begin() as connection:
        await connection.execute(text("UPDATE outbox_event SET webhook_url = :url"), {"url": url})


async def make_due(exchange: Exchange) -> None:
    """Skip the back-off wait, as if its time had come."""
    async with exchange.referral_app.state.db.engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE outbox_event SET next_attempt_at = '2000-01-01 00:00:00' "
                "WHERE delivered_at IS NULL"
            )
        )


async def deliver(app: Any) -> int:
    state = app.state
    key = workers.load_signing_key(state.settings)
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        return await workers.deliver_due(state.db, http, key, max_attempts=10)


class TestRealReceiver:
    async def test_an_outage_delays_but_loses_nothing(
        self, exchange: Exchange, receiver: Receiver
    ) -> None:
        await record_consent(exchange, REQUESTED_DEFAULT)
        created = (await send(exchange)).json()
        await point_webhooks_at(exchange, receiver.url)
        assert await deliver(exchange.referral_app) == 1  # receiver down: a failed attempt
        assert receiver.bodies == []
        await receiver.up()
        assert await deliver(exchange.referral_app) == 0  # backing off: not due yet
        await make_due(exchange)
        assert await deliver(exchange.referral_app) == 1
        assert len(receiver.bodies) == 1
        body, signature = receiver.bodies[0]
        verify_body(body, signature, exchange.referral_app.state.webhook_jwks)
        assert orjson.loads(body)["referral_id"] == created["id"]

    async def test_a_restarted_service_delivers_what_the_old_one_queued(
        self, exchange: Exchange, receiver: Receiver, in_process: Any
    ) -> None:
        await record_consent(exchange, REQUESTED_DEFAULT)
        await send(exchange)
        await point_webhooks_at(exchange, receiver.url)
        await receiver.up()
        old = exchange.referral_app.state.settings
        restarted = create_referral(old, clients=exchange.referral_app.state.clients)
        async with in_process(restarted):
            assert await deliver(restarted) == 1
        await asyncio.sleep(0)
        assert len(receiver.bodies) == 1
