"""Build the consent service's ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.consent import api, ledger_api, outbox_api
from services.consent.clients import DirectoryClient, ReferralClient
from services.consent.group_commit import GroupCommit
from services.consent.maintenance import LedgerMaintenance
from services.consent.models import OutboxEvent
from services.consent.outbox import withdrawal_outbox
from services.consent.settings import ConsentSettings
from services.consent.signing import load_signer
from shared.app import build_service_app
from shared.background import BackgroundRuntime
from shared.db import Database
from shared.http import ClientCredentialsTokens, TokenProvider
from shared.outbox import Outbox, OutboxGauges, OutboxPolicy

DESCRIPTION = (
    "Returnees' consents, emergency overrides, disclosure decisions and the tamper-evident "
    "consent ledger (RFC 9162 Merkle tree, Ed25519-signed tree heads). Subjects are opaque "
    "pseudonyms; emergency-override statements are stored only as SHA-256 and length."
)


def service_tokens(settings: ConsentSettings) -> TokenProvider | None:
    """Return the client-credentials token source when this service has credentials."""
    if settings.client_id and settings.client_secret:
        return ClientCredentialsTokens(
            settings.token_url, settings.client_id, settings.client_secret.get_secret_value()
        )
    return None


def create_app(
    settings: ConsentSettings | None = None,
    *,
    tokens: TokenProvider | None = None,
    directory_transport: httpx.AsyncBaseTransport | None = None,
    referral_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Create the consent app; settings come from the environment unless given.

    `tokens` and the transports let tests point the service-to-service calls elsewhere.
    """
    settings = settings or ConsentSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = tokens or service_tokens(settings)
        app.state.signer = load_signer(settings)
        app.state.directory = DirectoryClient(
            settings.directory_url, tokens=provider, transport=directory_transport
        )
        referral = ReferralClient(
            settings.referral_url, tokens=provider, transport=referral_transport
        )
        database: Database = app.state.db
        app.state.ledger_writer = GroupCommit(database.sessionmaker)
        app.state.outbox = withdrawal_outbox(
            sessionmaker=database.sessionmaker,
            client=referral,
            policy=OutboxPolicy.from_settings(settings),
            gauges=app.state.outbox_gauges,
        )
        maintenance = LedgerMaintenance(
            sessionmaker=database.sessionmaker, signer=app.state.signer, settings=settings
        )
        runtime: BackgroundRuntime = app.state.background
        _add_loops(runtime, settings, app.state.outbox, maintenance)
        try:
            async with runtime.running(enabled=settings.workers_enabled):
                yield
        finally:
            await app.state.ledger_writer.close()
            await app.state.directory.aclose()
            await referral.aclose()

    app = build_service_app(
        title="Consent and ledger", description=DESCRIPTION, settings=settings, lifespan=lifespan
    )
    app.include_router(api.router)
    app.include_router(ledger_api.router)
    app.include_router(outbox_api.router)
    app.state.background = BackgroundRuntime("consent", app.state.metrics.registry)
    app.state.outbox_gauges = OutboxGauges("consent", app.state.metrics.registry)
    return app


def _add_loops(
    runtime: BackgroundRuntime,
    settings: ConsentSettings,
    outbox: Outbox[OutboxEvent],
    maintenance: LedgerMaintenance,
) -> None:
    runtime.run_every("outbox", settings.outbox_poll_interval_s, outbox.deliver_due)
    runtime.run_every("outbox-gauges", settings.outbox_metrics_interval_s, outbox.refresh_gauges)
    runtime.run_every("ledger", settings.tree_head_interval_s, maintenance.tick)
