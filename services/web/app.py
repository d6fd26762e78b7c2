"""Build the workspace's ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.web import api
from services.web.gateway import Gateway
from services.web.pages import STATIC, CachedStatic, build_environment, error_page
from services.web.service import ZoneCache
from services.web.sessions import SessionStore
from services.web.settings import WebSettings
from shared.app import build_service_app
from shared.errors import ServiceError


def create_app(
    settings: WebSettings | None = None,
    *,
    gateway_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Create the workspace app; settings come from the environment unless given."""
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.gateway = Gateway(settings, gateway_transport)
        try:
            yield
        finally:
            await app.state.gateway.aclose()

    app = build_service_app(
        title="Referral Exchange workspace",
        description="Pages for people: the provider inbox, decryption in the browser.",
        settings=settings,
        lifespan=lifespan,
        with_database=False,
    )
    app.state.sessions = SessionStore(
        ttl_s=settings.session_ttl_s,
        idle_s=settings.idle_timeout_s,
        capacity=settings.max_sessions,
    )
    app.state.templates = build_environment()
    app.state.zones = ZoneCache()
    app.add_exception_handler(ServiceError, error_page)
    app.include_router(api.router)
    app.mount("/static", CachedStatic(directory=STATIC), name="static")
    return app
