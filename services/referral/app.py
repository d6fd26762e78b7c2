"""Build the referral service's ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

import httpx
from fastapi import FastAPI

from services.referral import api, workers
from services.referral.clients import ConsentClient, DirectoryClient
from services.referral.service import Clients
from services.referral.settings import ReferralSettings
from shared.app import build_service_app
from shared.http import ClientCredentialsTokens, TokenProvider, default_transport


def service_tokens(settings: ReferralSettings) -> TokenProvider | None:
    """Tokens this service presents to the directory and consent services."""
    if not settings.client_id or settings.client_secret is None:
        return None
    return ClientCredentialsTokens(
        settings.token_url, settings.client_id, settings.client_secret.get_secret_value()
    )


def create_app(
    settings: ReferralSettings | None = None,
    *,
    clients: Clients | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Create the referral app; tests may pass upstream clients and a webhook transport."""
    settings = settings or ReferralSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tokens = service_tokens(settings)
        app.state.clients = clients or Clients(
            directory=DirectoryClient(settings.directory_url, tokens=tokens),
            consent=ConsentClient(settings.consent_url, tokens=tokens),
        )
        app.state.readiness_checks["directory"] = app.state.clients.directory.ping
        app.state.readiness_checks["consent"] = app.state.clients.consent.ping
        signing_key = workers.load_signing_key(settings)
        app.state.webhook_jwks = workers.webhook_jwks(signing_key)
        http = httpx.AsyncClient(
            transport=webhook_transport or default_transport(),
            timeout=workers.DELIVERY_TIMEOUT,
            trust_env=False,
        )
        tasks = _start_workers(app, settings, http, signing_key) if settings.run_workers else []
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await http.aclose()
            await app.state.clients.directory.aclose()
            await app.state.clients.consent.aclose()

    app = build_service_app(
        title="Referral routing",
        description=(
            "Minimised, consented, encrypted referrals from return offices to service providers, "
            "and their lifecycle."
        ),
        settings=settings,
        lifespan=lifespan,
    )
    app.include_router(api.router)
    return app


def _start_workers(
    app: FastAPI,
    settings: ReferralSettings,
    http: httpx.AsyncClient,
    signing_key: dict[str, object],
) -> list[asyncio.Task[None]]:
    database = app.state.db
    grace = timedelta(hours=settings.sla_grace_hours)
    return [
        asyncio.create_task(
            workers.run_periodically(
                "outbox",
                settings.outbox_interval_s,
                lambda: workers.deliver_due(
                    database,
                    http,
                    signing_key,
                    settings.max_delivery_attempts,
                ),
            )
        ),
        asyncio.create_task(
            workers.run_periodically(
                "sla", settings.sla_interval_s, lambda: workers.sweep_deadlines(database, grace)
            )
        ),
    ]
