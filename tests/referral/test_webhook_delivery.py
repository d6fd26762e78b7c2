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
from shared.demo import HOST_OFFICE_ORG, PLATFORM_ORG
from shared.http import default_transport
from shared.webhooks import SIGNATURE_HEADER, verify_body
from tests.referral.conftest import REQUESTED_DEFAULT, Exchange, record_consent
from tests.referral.test_referrals_api import referral_body, send


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


class Endpoint:
    """A partner endpoint on a real socket, speaking raw bytes (asyncio server)."""

    def __init__(self, behaviour: str, jwks: dict[str, Any] | None = None) -> None:
        self.behaviour = behaviour  # honest | garbage | hang | redirect | oversized
        self.jwks = jwks
        self.bodies: list[bytes] = []
        self.requests = 0
        self.received = asyncio.Event()
        self.release = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Endpoint:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hooks"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line
            )
            lowered = {name.lower(): value for name, value in headers.items()}
            body = await reader.readexactly(int(lowered.get("content-length", "0")))
            self.requests += 1
            self.received.set()
            writer.write(await self._answer(body, lowered))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, body: bytes, headers: dict[str, str]) -> bytes:
        if self.behaviour == "honest":
            assert self.jwks is not None
            verify_body(body, headers[SIGNATURE_HEADER.lower()], self.jwks)
            self.bodies.append(body)
            return b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        if self.behaviour == "garbage":
            return b"\x00\xff\xfeNOT-HTTP \x01\x02\r\n\x7f\r\n\r\n"
        if self.behaviour == "redirect":
            return b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"
        if self.behaviour == "oversized":
            size = 4 * 1024 * 1024
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
        await self.release.wait()  # hang: accept, read, never answer
        return b""


async def point_each_at(exchange: Exchange, urls: list[str]) -> dict[str, str]:
    """Give each queued notification its own webhook; return url -> event id."""
    async with exchange.referral_app.state.db.engine.begin() as connection:
        ids = (await connection.execute(text("SELECT id FROM outbox_event ORDER BY id"))).all()
        assert len(ids) == len(urls)
        for (event_id,), url in zip(ids, urls, strict=True):
            await connection.execute(
                text("UPDATE outbox_event SET webhook_url = :url WHERE id = :id"),
                {"url": url, "id": event_id},
            )
    return {url: str(event_id) for (event_id,), url in zip(ids, urls, strict=True)}


async def outbox_state(exchange: Exchange) -> dict[str, tuple[int, bool, bool, str | None]]:
    """webhook url -> (attempts, delivered, dead, last error)."""
    async with exchange.referral_app.state.db.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT webhook_url, attempts, delivered_at, dead_at, last_error FROM outbox_event"
            )
        )
        return {
            row[0]: (row[1], row[2] is not None, row[3] is not None, row[4]) for row in rows.all()
        }


async def queue_notifications(exchange: Exchange, count: int) -> None:
    for n in range(count):
        subject = f"hof-2026-isolation-{n:04d}"
        await record_consent(exchange, REQUESTED_DEFAULT, subject=subject)
        response = await send(exchange, referral_body(subject_ref=subject))
        assert response.status_code == 201, response.text


@pytest.mark.promise(2)
class TestOnePartnerCannotStopTheOthers:
    async def test_honest_garbage_and_hanging_endpoints_are_each_settled_on_their_own(
        self, exchange: Exchange
    ) -> None:
        await queue_notifications(exchange, 3)
        jwks = exchange.referral_app.state.webhook_jwks
        async with (
            Endpoint("honest", jwks) as honest,
            Endpoint("garbage") as garbage,
            Endpoint("hang") as hang,
        ):
            await point_each_at(exchange, [honest.url, garbage.url, hang.url])
            key = workers.load_signing_key(exchange.referral_app.state.settings)
            async with httpx.AsyncClient(
                transport=default_transport(), timeout=0.5, trust_env=False
            ) as http:
                db = exchange.referral_app.state.db
                assert await workers.deliver_due(db, http, key, max_attempts=2) == 3
                first = await outbox_state(exchange)
                await make_due(exchange)
                await workers.deliver_due(db, http, key, max_attempts=2)
                second = await outbox_state(exchange)
        assert len(honest.bodies) == 1  # delivered once, never sent again
        assert first[honest.url][:3] == (1, True, False)
        for url in (garbage.url, hang.url):
            attempts, delivered, dead, error = first[url]
            assert (attempts, delivered, dead) == (1, False, False) and error
            assert second[url][:3] == (2, False, True)  # the limit reached: dead letter
        assert second[honest.url] == first[honest.url]
        assert garbage.requests == hang.requests == 2

    async def test_dead_letters_are_listed_counted_and_replayable(self, exchange: Exchange) -> None:
        await queue_notifications(exchange, 1)
        async with Endpoint("garbage") as garbage:
            await point_each_at(exchange, [garbage.url])
            key = workers.load_signing_key(exchange.referral_app.state.settings)
            async with httpx.AsyncClient(transport=default_transport(), timeout=2) as http:
                db = exchange.referral_app.state.db
                assert await workers.deliver_due(db, http, key, max_attempts=1) == 1
        admin = exchange.as_role("admin", PLATFORM_ORG)
        dead = (
            await exchange.referral.get("/referrals/deliveries/dead-letters", headers=admin)
        ).json()
        assert [d["attempts"] for d in dead] == [1] and dead[0]["last_error"]
        await exchange.referral_app.state.outbox.refresh_gauges()
        metrics = (await exchange.referral.get("/metrics")).text
        assert 'refex_outbox_dead_letters{outbox="webhooks",service="referral"} 1.0' in metrics
        assert 'refex_outbox_depth{outbox="webhooks",service="referral"} 0.0' in metrics
        replay = await exchange.referral.post(
            f"/referrals/deliveries/{dead[0]['event_id']}/replay", headers=admin
        )
        assert replay.status_code == 202
        assert (await outbox_state(exchange))[garbage.url][:3] == (0, False, False)
        again = await exchange.referral.post(
            f"/referrals/deliveries/{dead[0]['event_id']}/replay", headers=admin
        )
        assert again.status_code == 404
        assert again.json()["type"] == "urn:refex:problem:dead-letter-not-found"
        provider = exchange.as_role("provider", PLATFORM_ORG)
        forbidden = await exchange.referral.get(
            "/referrals/deliveries/dead-letters", headers=provider
        )
        assert forbidden.status_code == 403


@pytest.mark.promise(2)
class TestTheConfiguredWebhookClient:
    async def test_redirects_and_oversized_answers_are_failed_attempts(
        self, exchange: Exchange, in_process: Any
    ) -> None:
        await queue_notifications(exchange, 2)
        async with Endpoint("redirect") as redirect, Endpoint("oversized") as oversized:
            await point_each_at(exchange, [redirect.url, oversized.url])
            app = real_webhooks(exchange, outbox_delivery_timeout_s=5.0)
            async with in_process(app):
                assert await app.state.outbox.deliver_due() == 2
            state = await outbox_state(exchange)
        assert state[redirect.url] == (1, False, False, "HTTP 307")
        assert state[oversized.url] == (1, False, False, "answer too large")
        assert redirect.requests == 1  # the Location was not followed

    async def test_a_hanging_partner_does_not_hold_the_database(
        self, exchange: Exchange, in_process: Any
    ) -> None:
        await queue_notifications(exchange, 1)
        host = exchange.as_role("host_office", HOST_OFFICE_ORG)
        created = (await exchange.referral.get("/referrals", headers=host)).json()["items"]
        async with Endpoint("hang") as hang:
            await point_each_at(exchange, [hang.url])
            app = real_webhooks(exchange, outbox_delivery_timeout_s=120.0, outbox_lease_s=600.0)
            async with in_process(app) as client:
                delivery = asyncio.create_task(app.state.outbox.deliver_due())
                await hang.received.wait()
                read = await client.get(f"/referrals/{created[0]['id']}", headers=host)
                assert read.status_code == 200  # the single SQLite connection was free
                assert not delivery.done()
                hang.release.set()  # the partner drops the connection without an answer
                assert await delivery == 1
            state = await outbox_state(exchange)
        attempts, delivered, dead, error = state[hang.url]
        assert (attempts, delivered, dead) == (1, False, False) and error

    async def test_a_forbidden_address_is_refused_at_the_call_and_counted(
        self, exchange: Exchange, in_process: Any
    ) -> None:
        await queue_notifications(exchange, 1)
        async with Endpoint("honest", exchange.referral_app.state.webhook_jwks) as honest:
            await point_each_at(exchange, [honest.url])
            app = real_webhooks(exchange, partner_urls_allow_private=False)
            async with in_process(app):
                assert await app.state.outbox.deliver_due() == 1
            state = await outbox_state(exchange)
        assert state[honest.url] == (1, False, False, "PartnerAddressRefused")
        assert honest.requests == 0  # refused before any connection


def real_webhooks(exchange: Exchange, **settings: Any) -> Any:
    """The referral app again, on the same database, with the production webhook transport.

    In development, so the guarded transport lets plain http reach the endpoints on 127.0.0.1.
    """
    state = exchange.referral_app.state
    update = {"environment": "development", "partner_urls_allow_private": True, **settings}
    return create_referral(state.settings.model_copy(update=update), clients=state.clients)
