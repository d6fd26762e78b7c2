"""Build the referral service's ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.referral import api, costs_api, workers
from services.referral.clients import ConsentClient, DirectoryClient
from services.referral.metrics import ReferralGauges
from services.referral.notifications import WebhookSender, webhook_client
from services.referral.service import Clients
from services.referral.settings import ReferralSettings
from shared.app import build_service_app
from shared.background import BackgroundRuntime
from shared.http import ClientCredentialsTokens, TokenProvider
from shared.outbox import OutboxGauges, OutboxPolicy
from shared.partner_urls import UrlPolicy, guarded_transport


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
        # Partner URLs are checked again at each call and the connection pinned (DNS rebinding).
        transport = webhook_transport or guarded_transport(UrlPolicy.from_settings(settings))
        http = webhook_client(transport, settings.outbox_delivery_timeout_s)
        app.state.outbox = workers.webhook_outbox(
            app.state.db,
            WebhookSender(http, signing_key),
            OutboxPolicy.from_settings(settings),
            app.state.outbox_gauges,
        )
        runtime: BackgroundRuntime = app.state.background
        workers.add_loops(
            runtime, settings, app.state.db, app.state.outbox, app.state.referral_gauges
        )
        try:
            async with runtime.running(enabled=settings.workers_enabled):
                yield
        finally:
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
    app.include_router(costs_api.router)
    app.include_router(api.router)
    app.state.background = BackgroundRuntime("referral", app.state.metrics.registry)
    app.state.outbox_gauges = OutboxGauges("referral", app.state.metrics.registry)
    app.state.referral_gauges = ReferralGauges(app.state.metrics.registry)
    return app
