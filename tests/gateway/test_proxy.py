"""The proxy: routing, header handling, and each failure mapped to its problem."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from shared.testing import TokenMinter
from tests.gateway.conftest import SettingsFactory, closed_url, get_token, register
from tests.gateway.upstreams import EchoUpstream, connection_dropper, serve_http

PROBLEM = "application/problem+json"


@pytest.fixture
def gateway_settings(sqlite_gateway_settings: SettingsFactory) -> SettingsFactory:
    """No database behaviour is tested here: one backend is enough."""
    return sqlite_gateway_settings


class Env:
    """A gateway in process whose three upstreams are one real echo server."""

    def __init__(self, http: httpx.AsyncClient, app: FastAPI, echo: EchoUpstream) -> None:
        self.http = http
        self.app = app
        self.echo = echo
        self.auth: dict[str, str] = {}

    async def login(self, roles: list[str] | None = None) -> dict[str, str]:
        client_id, secret = await register(self.app, roles=roles or ["host_office"])
        self.auth = {"Authorization": f"Bearer {await get_token(self.http, client_id, secret)}"}
        return self.auth

    def forwarded(self) -> list[dict[str, Any]]:
        """Requests the echo saw, less the gateway's own API-description fetches."""
        return [r for r in self.echo.requests if r["path"] != "/openapi.json"]

    def seen(self) -> dict[str, Any]:
        return self.forwarded()[-1]


async def start_env(
    gateway_settings: SettingsFactory, in_process: Any, **overrides: Any
) -> AsyncIterator[Env]:
    echo = EchoUpstream()
    async with serve_http(echo) as url:
        settings = await gateway_settings(
            directory_url=url, consent_url=url, referral_url=url, **overrides
        )
        app = create_app(settings)
        async with in_process(app) as http:
            env = Env(http, app, echo)
            await env.login()
            yield env


@pytest.fixture
async def env(gateway_settings: SettingsFactory, in_process: Any) -> AsyncIterator[Env]:
    async for value in start_env(gateway_settings, in_process, upstream_timeout_s=0.5):
        yield value


class TestRouting:
    @pytest.mark.parametrize(
        ("external", "upstream"),
        [
            ("/api/v1/directory/organisations/abc", "/organisations/abc"),
            ("/api/v1/consents/123", "/consents/123"),
            ("/api/v1/decisions", "/decisions"),
            ("/api/v1/overrides/1", "/overrides/1"),
            ("/api/v1/disclosures", "/disclosures"),
            ("/api/v1/subjects/s1/consents", "/subjects/s1/consents"),
            ("/api/v1/ledger/tree-head", "/ledger/tree-head"),
            ("/api/v1/referrals/r1/status", "/referrals/r1/status"),
            ("/api/v1/casefile/schema", "/casefile/schema"),
        ],
    )
    async def test_public_paths_reach_their_service_path(
        self, env: Env, external: str, upstream: str
    ) -> None:
        response = await env.http.get(external, headers=env.auth)
        assert response.status_code == 200
        assert env.seen()["path"] == upstream

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/directory/internal/keys",
            "/api/v1/directory/healthz",
            "/api/v1/directory/metrics",
            "/api/v1/directory/info",
            "/api/v1/directory/readyz",
            "/api/v1/directory",
            "/api/v1/internal/anything",
            "/api/v1/nothing-here",
            "/api/v1/directory/a/%2e%2e/internal/keys",
            "/api/v1/directory/internal%2Fkeys",
        ],
    )
    async def test_internal_and_unknown_paths_are_404_problems(self, env: Env, path: str) -> None:
        response = await env.http.get(path, headers=env.auth)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert env.forwarded() == []

    async def test_unknown_gateway_path_is_a_404_problem(self, env: Env) -> None:
        response = await env.http.get("/no/such/page")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


class TestForwarding:
    async def test_method_query_body_and_status_are_preserved(self, env: Env) -> None:
        response = await env.http.post(
            "/api/v1/referrals?a=1&a=2&b=%20x",
            headers={**env.auth, "Content-Type": "application/json"},
            content=b'{"x": 1}',
        )
        assert response.status_code == 201
        seen = env.seen()
        assert seen["method"] == "POST"
        assert seen["query"] == "a=1&a=2&b=%20x"
        assert seen["body"] == '{"x": 1}'

    async def test_authorization_and_request_id_are_forwarded(self, env: Env) -> None:
        response = await env.http.get(
            "/api/v1/referrals", headers={**env.auth, "X-Request-ID": "req-42"}
        )
        headers = dict(env.seen()["headers"])
        assert headers["authorization"] == env.auth["Authorization"]
        assert headers["x-request-id"] == "req-42"
        assert response.headers.get_list("x-request-id") == ["req-42"]

    async def test_hop_by_hop_request_headers_are_dropped(self, env: Env) -> None:
        await env.http.get(
            "/api/v1/referrals",
            headers={
                **env.auth,
                "Connection": "keep-alive, X-Secret-Hop",
                "X-Secret-Hop": "1",
                "Proxy-Authorization": "Basic Zm9vOmJhcg==",
                "TE": "trailers",
                "Upgrade": "h2c",
                "X-End-To-End": "kept",
            },
        )
        names = {name for name, _ in env.seen()["headers"]}
        assert {"x-secret-hop", "proxy-authorization", "te", "upgrade"}.isdisjoint(names)
        assert "x-end-to-end" in names
        assert dict(env.seen()["headers"])["x-forwarded-proto"] == "http"

    async def test_end_to_end_response_headers_come_back_and_hop_by_hop_do_not(
        self, env: Env
    ) -> None:
        response = await env.http.get("/api/v1/referrals", headers=env.auth)
        assert response.headers["etag"] == '"v7"'
        assert response.headers["x-upstream"] == "echo"
        assert "keep-alive" not in response.headers
        assert "upstream-made-this-up" not in response.headers.get_list("x-request-id")


class TestObservability:
    async def test_metrics_name_proxied_calls_by_route_template_only(self, env: Env) -> None:
        await env.http.get(
            "/api/v1/referrals/0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d", headers=env.auth
        )
        text = (await env.http.get("/metrics")).text
        assert 'route="/api/v1/referrals/{path}"' in text
        assert "0192f0c4-7d1e" not in text


class TestAuthenticationAtTheGateway:
    async def test_no_token_is_401_and_nothing_reaches_the_service(self, env: Env) -> None:
        response = await env.http.get("/api/v1/referrals")
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert "Bearer" in response.headers["www-authenticate"]
        assert env.forwarded() == []

    @pytest.mark.parametrize(
        "value", ["Bearer", "Basic abc", "Bearer a b", "bearer not-a-jwt", "Token x.y.z"]
    )
    async def test_malformed_authorization_is_401(self, env: Env, value: str) -> None:
        response = await env.http.get("/api/v1/referrals", headers={"Authorization": value})
        assert response.status_code == 401
        assert env.forwarded() == []

    async def test_a_token_in_the_query_string_is_refused(self, env: Env) -> None:
        token = env.auth["Authorization"].removeprefix("Bearer ")
        response = await env.http.get(f"/api/v1/referrals?access_token={token}")
        assert response.status_code == 401
        assert "URL" in response.json()["detail"]
        assert env.forwarded() == []

    async def test_a_token_from_another_issuer_key_is_refused(self, env: Env) -> None:
        foreign = TokenMinter().headers(roles=["host_office"])
        response = await env.http.get("/api/v1/referrals", headers=foreign)
        assert response.status_code == 401
        assert env.forwarded() == []

    async def test_huge_headers_are_a_431_problem(self, env: Env) -> None:
        response = await env.http.get(
            "/api/v1/referrals", headers={**env.auth, "X-Padding": "p" * 40_000}
        )
        assert response.status_code == 431
        assert response.headers["content-type"] == PROBLEM
        assert env.forwarded() == []


class TestLimitsAndFailures:
    async def test_a_body_over_the_limit_is_413_and_not_forwarded(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        limits = {"route_body_limits": {"referrals": 2048}}
        async for env in start_env(gateway_settings, in_process, **limits):
            small_route = await env.http.post(
                "/api/v1/referrals", headers=env.auth, content=b"x" * 3000
            )
            assert small_route.status_code == 413
            assert small_route.headers["content-type"] == PROBLEM
            assert "2 KiB" in small_route.json()["detail"]
            assert env.forwarded() == []
            default_route = await env.http.post(
                "/api/v1/consents", headers=env.auth, content=b"x" * 3000
            )
            assert default_route.status_code == 201

    async def test_a_chunked_body_over_the_limit_is_413(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"y" * 1024

        limits = {"route_body_limits": {"referrals": 2048}}
        async for env in start_env(gateway_settings, in_process, **limits):
            response = await env.http.post("/api/v1/referrals", headers=env.auth, content=chunks())
            assert response.status_code == 413
            assert env.forwarded() == []

    async def test_an_unreachable_service_is_a_503_problem(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        app = create_app(await gateway_settings(referral_url=closed_url()))
        async with in_process(app) as http:
            client_id, secret = await register(app, roles=["host_office"])
            token = await get_token(http, client_id, secret)
            response = await http.get(
                "/api/v1/referrals", headers={"Authorization": f"Bearer {token}"}
            )
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert "referral service is unreachable" in response.json()["detail"]

    async def test_a_slow_service_is_a_504_problem(self, env: Env) -> None:
        env.echo.delay_s = 1.5
        response = await env.http.post("/api/v1/referrals", headers=env.auth, content=b"{}")
        assert response.status_code == 504
        assert response.headers["content-type"] == PROBLEM
        assert "check whether it was applied" in response.json()["detail"]

    async def test_a_dropped_connection_is_a_503_problem(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        async with connection_dropper() as url:
            app = create_app(await gateway_settings(consent_url=url))
            async with in_process(app) as http:
                client_id, secret = await register(app, roles=["host_office"])
                token = await get_token(http, client_id, secret)
                response = await http.get(
                    "/api/v1/consents", headers={"Authorization": f"Bearer {token}"}
                )
        assert response.status_code == 503
        assert "closed the connection" in response.json()["detail"]

    @pytest.mark.promise(12)
    async def test_gateway_readiness_is_its_own_and_upstreams_are_reported_apart(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        echo = EchoUpstream()
        async with serve_http(echo) as url:
            settings = await gateway_settings(directory_url=url, consent_url=url)
            async with in_process(create_app(settings)) as http:
                ready = await http.get("/readyz")
                upstreams = await http.get("/readyz/upstreams")
        assert ready.status_code == 200  # a service down leaves the token endpoint in service
        assert ready.json()["checks"] == {"database": "ok", "signing_keys": "ok"}
        assert upstreams.status_code == 503
        assert upstreams.json()["checks"] == {
            "directory": "ok",
            "consent": "ok",
            "referral": "unreachable",
        }
