"""Build the gateway service's ASGI app."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway import api, signin_api, users_api
from services.gateway.docs import install_docs
from services.gateway.keys import KeyEncryptionKeyError, KeyRing, KeyRingJwks, load_kek
from services.gateway.openapi import OpenApiCatalog
from services.gateway.proxy import API_PREFIX, GatewayProxy, PrefixDispatch, ProblemBoundary
from services.gateway.ratelimit import RateLimiter, build_rate_limiter
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import ProxyClient, build_proxy_client
from services.gateway.vault import PeopleVault
from shared.app import build_service_app
from shared.auth import TokenVerifier
from shared.background import BackgroundRuntime
from shared.middleware import RequestContextMiddleware
from shared.telemetry import traced_asgi
from shared.vocabulary import Role

logger = logging.getLogger("refex.gateway")


def _upstreams(settings: GatewaySettings) -> dict[str, str]:
    return {
        "directory": settings.directory_url,
        "consent": settings.consent_url,
        "referral": settings.referral_url,
    }


def _upstream_check(client: ProxyClient, base_url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        reply = await client.send(
            method="GET", url=f"{base_url.rstrip('/')}/healthz", headers=[], body=b""
        )
        await reply.release()
        if reply.status != 200:
            raise ConnectionError(f"status {reply.status}")

    return check


def _keys_check(keys: KeyRing) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        # current_kid raises while no key is loaded
        if not keys.current_kid or not keys.public_jwks()["keys"]:
            raise RuntimeError("no signing key")

    return check


async def _load_keys(app: FastAPI, settings: GatewaySettings) -> KeyRing:
    try:
        kek = load_kek(settings)
        keys = KeyRing(app.state.db, kek, overlap_s=settings.signing_key_overlap_s)
        await keys.load()
    except KeyEncryptionKeyError as error:
        logger.error(str(error))  # the process stops next; this line says why
        raise
    app.state.vault = PeopleVault(kek)
    return keys


def _sign_in_limiters(app: FastAPI, settings: GatewaySettings) -> list[RateLimiter]:
    """Limit sign-in attempts per source address and per account (keyed by a hash)."""
    limiters = []
    for kind in ("address", "account"):
        limiter = build_rate_limiter(
            redis_url=settings.redis_url,
            rate_per_s=getattr(settings, f"signin_{kind}_rate_limit_per_s"),
            burst=getattr(settings, f"signin_{kind}_rate_limit_burst"),
            prefix=f"refex:rl:signin-{kind}:",
            capacity=settings.rate_limit_memory_buckets,
        )
        setattr(app.state, f"signin_{kind}_limiter", limiter)
        limiters.append(limiter)
    return limiters


def _reload_keys(keys: KeyRing) -> Callable[[], Awaitable[int]]:
    async def reload() -> int:
        """Pick up keys rotated by another gateway replica (a failure keeps the loaded ones)."""
        await keys.load()
        return 0

    return reload


def _load_missing_documents(catalog: OpenApiCatalog) -> Callable[[], Awaitable[int]]:
    async def load() -> int:
        """Ask the services whose API description is still missing (none: nothing to do)."""
        await catalog.refresh_missing()
        return 0

    return load


def _lifespan(
    settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = await _load_keys(app, settings)
        app.state.keys = keys
        app.state.verifier = TokenVerifier(
            KeyRingJwks(keys),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
        )
        client = build_proxy_client(settings, transport)
        capacity = settings.rate_limit_memory_buckets
        limiter = build_rate_limiter(
            redis_url=settings.redis_url,
            rate_per_s=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
            capacity=capacity,
        )
        app.state.token_address_limiter = build_rate_limiter(
            redis_url=settings.redis_url,
            rate_per_s=settings.token_address_rate_limit_per_s,
            burst=settings.token_address_rate_limit_burst,
            prefix="refex:rl:token-address:",
            capacity=capacity,
        )
        app.state.token_limiter = build_rate_limiter(
            redis_url=settings.redis_url,
            rate_per_s=settings.token_rate_limit_per_s,
            burst=settings.token_rate_limit_burst,
            prefix="refex:rl:token:",
            capacity=capacity,
        )
        sign_in_limiters = _sign_in_limiters(app, settings)
        app.state.proxy = GatewayProxy(
            settings=settings, client=client, verifier=app.state.verifier, limiter=limiter
        )
        upstreams = _upstreams(settings)
        app.state.openapi = OpenApiCatalog(
            own=app.openapi, upstreams=upstreams, client=client, roles=[r.value for r in Role]
        )
        # /readyz is the gateway's own: one service down must not take the token endpoint out
        # of the load balancer. /readyz/upstreams reports the rest (Redis fails open).
        app.state.readiness_checks["signing_keys"] = _keys_check(keys)
        app.state.upstream_checks = {
            name: _upstream_check(client, url) for name, url in upstreams.items()
        }
        if settings.redis_url:
            app.state.upstream_checks["redis"] = limiter.ping
        runtime: BackgroundRuntime = app.state.background
        runtime.run_every("signing-keys", settings.key_reload_interval_s, _reload_keys(keys))
        runtime.run_every(
            "openapi", settings.openapi_retry_interval_s, _load_missing_documents(app.state.openapi)
        )
        try:
            async with runtime.running():
                yield
        finally:
            await client.aclose()
            await limiter.aclose()
            await app.state.token_limiter.aclose()
            await app.state.token_address_limiter.aclose()
            for sign_in_limiter in sign_in_limiters:
                await sign_in_limiter.aclose()

    return lifespan


def create_app(
    settings: GatewaySettings | None = None,
    *,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Create the gateway app; settings come from the environment unless given.

    `upstream_transport` replaces the proxy's HTTP client with httpx over that transport
    (tests run the services in process that way).
    """
    settings = settings or GatewaySettings()
    app = build_service_app(
        title="Referral Exchange API",
        description=(
            "The single front door to Referral Exchange: get an access token at `/oauth/token` "
            "with your client credentials (Authorize button), then call the directory, consent "
            "and referral APIs under `/api/v1`. People sign in through the workspace with the "
            "authorization code flow and PKCE (`/oauth/authorize`)."
        ),
        settings=settings,
        lifespan=_lifespan(settings, upstream_transport),
    )
    app.include_router(api.router)
    app.include_router(signin_api.router)
    app.include_router(users_api.router)
    app.include_router(users_api.me_router)
    install_docs(app)
    app.state.background = BackgroundRuntime("gateway", app.state.metrics.registry)

    _install_fast_proxy(app)
    return app


def _install_fast_proxy(app: FastAPI) -> None:
    """Serve /api/v1/... through the request-context middleware and the proxy alone."""

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        await app.state.proxy(scope, receive, send)

    context = next(m for m in app.user_middleware if m.cls is RequestContextMiddleware)  # type: ignore[comparison-overlap]
    options: dict[str, Any] = dict(context.kwargs)
    proxied = RequestContextMiddleware(
        ProblemBoundary(proxy),
        metrics=options["metrics"],
        max_body_bytes=options["max_body_bytes"],
    )
    build_framework_stack = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return PrefixDispatch(f"{API_PREFIX}/", traced_asgi(proxied), build_framework_stack())

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
