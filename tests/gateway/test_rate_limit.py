"""Per-client token buckets, in memory and in the real local Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.ratelimit import MemoryRateLimiter, RedisRateLimiter
from shared.ids import new_id
from tests.gateway.conftest import SettingsFactory, get_token, register
from tests.gateway.upstreams import EchoUpstream, serve_http

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMITS = {"rate_limit_burst": 2, "rate_limit_per_s": 0.5}


@pytest.fixture
def gateway_settings(sqlite_gateway_settings: SettingsFactory) -> SettingsFactory:
    """No database behaviour is tested here: one backend is enough."""
    return sqlite_gateway_settings


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with serve_http(EchoUpstream()) as url:
        yield url


async def bearer(http: httpx.AsyncClient, app: Any) -> dict[str, str]:
    client_id, secret = await register(app, roles=["host_office"])
    return {"Authorization": f"Bearer {await get_token(http, client_id, secret)}"}


@pytest.mark.parametrize("redis_url", [None, REDIS_URL], ids=["memory", "redis"])
class TestRateLimitAtTheGateway:
    async def test_a_client_over_its_burst_gets_429_with_retry_after(
        self,
        gateway_settings: SettingsFactory,
        in_process: Any,
        echo_url: str,
        redis_url: str | None,
    ) -> None:
        settings = await gateway_settings(referral_url=echo_url, redis_url=redis_url, **LIMITS)
        app = create_app(settings)
        async with in_process(app) as http:
            first, second = await bearer(http, app), await bearer(http, app)
            statuses = [(await http.get("/api/v1/referrals", headers=first)).status_code]
            statuses.append((await http.get("/api/v1/referrals", headers=first)).status_code)
            limited = await http.get("/api/v1/referrals", headers=first)
            other = await http.get("/api/v1/referrals", headers=second)
        assert statuses == [200, 200]
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) in (1, 2)
        assert other.status_code == 200


class TestRedisBuckets:
    async def test_replicas_sharing_redis_share_each_clients_bucket(
        self, gateway_settings: SettingsFactory, in_process: Any, echo_url: str
    ) -> None:
        settings = await gateway_settings(referral_url=echo_url, redis_url=REDIS_URL, **LIMITS)
        one, two = create_app(settings), create_app(settings)
        async with in_process(one) as http_one, in_process(two) as http_two:
            headers = await bearer(http_one, one)
            await two.state.keys.load()  # the second replica sees the same signing key
            assert (await http_one.get("/api/v1/referrals", headers=headers)).status_code == 200
            assert (await http_two.get("/api/v1/referrals", headers=headers)).status_code == 200
            assert (await http_one.get("/api/v1/referrals", headers=headers)).status_code == 429
            assert (await http_two.get("/api/v1/referrals", headers=headers)).status_code == 429

    async def test_upstream_readiness_checks_redis_when_configured(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings(redis_url="redis://127.0.0.1:1/0")
        async with in_process(create_app(settings)) as http:
            checks = (await http.get("/readyz/upstreams")).json()["checks"]
            own = await http.get("/readyz")
        assert checks["redis"] == "unreachable"
        assert own.status_code == 200  # the limiter fails open, so Redis is not the gateway's
        settings = await gateway_settings(redis_url=REDIS_URL)
        async with in_process(create_app(settings)) as http:
            checks = (await http.get("/readyz/upstreams")).json()["checks"]
        assert checks["redis"] == "ok"

    async def test_the_bucket_refills_at_the_configured_rate(self) -> None:
        limiter = RedisRateLimiter(REDIS_URL, rate_per_s=2.0, burst=1)
        key = new_id().hex
        try:
            assert await limiter.take(key) == 0
            wait = await limiter.take(key)
            assert 0.25 < wait <= 0.5  # one token per 0.5 s, minus the time between the calls
        finally:
            await limiter.aclose()

    async def test_an_unreachable_redis_lets_requests_through(self) -> None:
        limiter = RedisRateLimiter("redis://127.0.0.1:1/0", rate_per_s=1.0, burst=1)
        assert await limiter.take("any") == 0
        assert await limiter.take("any") == 0


class TestMemoryBuckets:
    async def test_waiting_refills_tokens(self) -> None:
        limiter = MemoryRateLimiter(rate_per_s=2.0, burst=1)
        assert await limiter.take("c") == 0
        assert 0.25 < await limiter.take("c") <= 0.5
        assert await limiter.take("other") == 0
