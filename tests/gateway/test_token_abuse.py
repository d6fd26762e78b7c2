"""The token endpoint under abuse: bounded input, limits per source address then per client."""

from __future__ import annotations

import base64
import tracemalloc
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr, ValidationError
from sqlalchemy import update

from services.gateway.app import create_app
from services.gateway.hashing import hash_secret
from services.gateway.models import ApiClient
from services.gateway.ratelimit import MemoryRateLimiter, source_address
from services.gateway.settings import GatewaySettings
from shared.ids import new_id
from tests.gateway.conftest import KEK, SettingsFactory, get_token, register

REDIS_URL = "redis://127.0.0.1:6379/0"
GRANT = {"grant_type": "client_credentials"}
# Five requests per address, then (practically) no refill during a test.
ADDRESS_LIMIT = {"token_address_rate_limit_burst": 5, "token_address_rate_limit_per_s": 0.001}


@pytest.fixture
def gateway_settings(sqlite_gateway_settings: SettingsFactory) -> SettingsFactory:
    """No database behaviour is tested here: one backend is enough."""
    return sqlite_gateway_settings


def random_address() -> str:
    """A fresh address per test, so buckets left in Redis by other runs never interfere."""
    raw = new_id().bytes
    return f"10.{raw[-3]}.{raw[-2]}.{raw[-1]}"


def bogus_basic(n: int) -> tuple[str, str]:
    return (f"{n:064d}", "wrong-secret")


class TestBoundedInput:
    @pytest.mark.promise(5)
    async def test_a_client_id_longer_than_any_client_has_is_invalid_request(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        async with in_process(create_app(await gateway_settings())) as http:
            long_id = await http.post("/oauth/token", data=GRANT, auth=("x" * 65, "secret"))
            huge = await http.post(
                "/oauth/token", data={**GRANT, "client_id": "x" * 200_000, "client_secret": "s"}
            )
        for response in (long_id, huge):
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "invalid_request"
        assert "64 characters" in long_id.json()["error_description"]


@pytest.mark.parametrize("redis_url", [None, REDIS_URL], ids=["memory", "redis"])
class TestLimitsPerAddress:
    @pytest.mark.promise(5)
    async def test_failing_in_a_clients_name_from_elsewhere_does_not_lock_it_out(
        self, gateway_settings: SettingsFactory, in_process: Any, redis_url: str | None
    ) -> None:
        settings = await gateway_settings(
            redis_url=redis_url, trusted_proxy_count=1, **ADDRESS_LIMIT
        )
        app = create_app(settings)
        attacker = {"X-Forwarded-For": random_address()}
        owner = {"X-Forwarded-For": random_address()}
        async with in_process(app) as http:
            client_id, secret = await register(app, roles=["provider"])
            failures = [
                await http.post(
                    "/oauth/token", data=GRANT, auth=(client_id, "guess"), headers=attacker
                )
                for _ in range(8)
            ]
            own = await http.post(
                "/oauth/token", data=GRANT, auth=(client_id, secret), headers=owner
            )
        assert [r.status_code for r in failures] == [401] * 5 + [429] * 3
        limited = failures[-1]
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert "network address" in limited.json()["detail"]
        assert own.status_code == 200, own.text

    @pytest.mark.promise(5)
    async def test_a_forged_forwarded_for_does_not_escape_the_limit_without_trusted_proxies(
        self, gateway_settings: SettingsFactory, in_process: Any, redis_url: str | None
    ) -> None:
        peer = random_address()
        settings = await gateway_settings(redis_url=redis_url, **ADDRESS_LIMIT)
        app = create_app(settings)
        transport = httpx.ASGITransport(app, client=(peer, 4711))
        async with (
            in_process(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        ):
            statuses = [
                (
                    await http.post(
                        "/oauth/token",
                        data=GRANT,
                        auth=bogus_basic(n),
                        headers={"X-Forwarded-For": random_address()},
                    )
                ).status_code
                for n in range(7)
            ]
        assert statuses == [401] * 5 + [429] * 2


async def post_token_raw(app: Any, client_id: str) -> int:
    """POST one token request straight to the ASGI app (cheaper than httpx, for volume)."""
    credentials = base64.b64encode(f"{client_id}:wrong-secret".encode()).decode()
    body = b"grant_type=client_credentials"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/oauth/token",
        "raw_path": b"/oauth/token",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Basic {credentials}".encode()),
        ],
        "client": ("198.51.100.7", 4711),
        "server": ("testserver", 80),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


class TestBoundedMemory:
    @pytest.mark.promise(5)
    async def test_ten_thousand_bogus_client_ids_from_one_address_leave_bounded_memory(
        self, gateway_settings: SettingsFactory
    ) -> None:
        app = create_app(await gateway_settings(**ADDRESS_LIMIT))
        async with LifespanManager(app) as manager:
            first = [await post_token_raw(manager.app, f"{n:064d}") for n in range(6)]
            assert first == [401] * 5 + [429]
            for n in range(6, 200):  # warm every code path before measuring
                await post_token_raw(manager.app, f"{n:064d}")
            tracemalloc.start()
            try:
                before, _ = tracemalloc.get_traced_memory()
                statuses = {
                    await post_token_raw(manager.app, f"{n:064d}") for n in range(200, 10_000)
                }
                after, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        print(f"memory growth over 9,800 bogus client ids: {after - before} bytes")
        assert statuses == {429}
        # One bucket per claimed id would hold at least 9,800 64-character keys (~1.5 MB).
        assert after - before < 256 * 1024

    @pytest.mark.promise(5)
    async def test_the_memory_limiter_holds_at_most_its_capacity_and_forgets_full_buckets(
        self,
    ) -> None:
        now = [0.0]
        limiter = MemoryRateLimiter(rate_per_s=1.0, burst=10, capacity=1000, clock=lambda: now[0])
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for n in range(10_000):
                await limiter.take(f"client-{n:058d}")
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(limiter) == 1000
        assert after - before < 400 * 1024
        now[0] = 10.0  # every bucket has refilled: none needs remembering
        await limiter.take("one more")
        assert len(limiter) == 1

    async def test_a_recent_bucket_survives_capacity_pressure_only_while_recently_used(
        self,
    ) -> None:
        now = [0.0]
        limiter = MemoryRateLimiter(rate_per_s=0.001, burst=1, capacity=100, clock=lambda: now[0])
        assert await limiter.take("busy") == 0
        assert await limiter.take("busy") > 0
        for n in range(50):
            await limiter.take(f"other-{n}")
        assert await limiter.take("busy") > 0  # still remembered, still empty


class TestSourceAddress:
    def test_the_peer_is_the_caller_without_trusted_proxies(self) -> None:
        assert source_address("198.51.100.4", ["203.0.113.9"], 0) == "198.51.100.4"

    def test_the_entry_the_outermost_trusted_proxy_added_is_the_caller(self) -> None:
        hops = ["6.6.6.6, 203.0.113.9", "10.0.0.2"]
        assert source_address("10.0.0.3", hops, 2) == "203.0.113.9"
        assert source_address("10.0.0.3", hops, 1) == "10.0.0.2"
        assert source_address("10.0.0.3", ["203.0.113.9"], 3) == "203.0.113.9"

    def test_ipv6_callers_are_keyed_by_their_64_and_garbage_falls_back_to_the_peer(self) -> None:
        assert source_address("2001:db8:1:2:3:4:5:6", [], 0) == "2001:db8:1:2::/64"
        assert source_address("198.51.100.4", ["not-an-address"], 1) == "198.51.100.4"


class TestHmacSecrets:
    async def test_a_secret_stored_as_argon2_before_still_gets_a_token(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        app = create_app(await gateway_settings())
        async with in_process(app) as http:
            client_id, secret = await register(app, roles=["provider"])
            async with app.state.db.sessionmaker.begin() as session:
                await session.execute(
                    update(ApiClient)
                    .where(ApiClient.client_id == client_id)
                    .values(secret_hash=hash_secret(secret))
                )
            assert await get_token(http, client_id, secret)
            wrong = await http.post("/oauth/token", data=GRANT, auth=(client_id, secret + "x"))
        assert wrong.status_code == 401

    async def test_an_hmac_secret_does_not_verify_under_another_pepper(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings()
        app = create_app(settings)
        async with in_process(app) as http:
            client_id, secret = await register(app, roles=["provider"])
        other = settings.model_copy(
            update={"client_secret_pepper": SecretStr("another-pepper-" + KEK)}
        )
        async with in_process(create_app(other)) as http:
            response = await http.post("/oauth/token", data=GRANT, auth=(client_id, secret))
        assert response.status_code == 401

    @pytest.mark.promise(5)
    @pytest.mark.parametrize("pepper", ["dev-only-" + "x" * 40, "changeme", "short"])
    def test_a_placeholder_or_short_pepper_is_refused_outside_development(
        self, pepper: str
    ) -> None:
        with pytest.raises(ValidationError, match=r"CLIENT_SECRET_PEPPER|pepper"):
            GatewaySettings(
                environment="production", key_encryption_key=KEK, client_secret_pepper=pepper
            )
