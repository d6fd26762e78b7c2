"""Build the consent service's ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from services.consent import api, ledger_api
from services.consent.clients import DirectoryClient, ReferralClient
from services.consent.maintenance import LedgerMaintenance
from services.consent.outbox import OutboxWorker
from services.consent.settings import ConsentSettings
from services.consent.signing import load_signer
from shared.app import build_service_app
from shared.db import Database
from shared.http import ClientCredentialsTokens, TokenProvider

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
        app.state.outbox = OutboxWorker(
            sessionmaker=database.sessionmaker, client=referral, settings=settings
        )
        maintenance = LedgerMaintenance(
            sessionmaker=database.sessionmaker, signer=app.state.signer, settings=settings
        )
        workers = [app.state.outbox.run(), maintenance.run()] if settings.workers_enabled else []
        async with _running(workers):
            yield
        await app.state.directory.aclose()
        await referral.aclose()

    app = build_service_app(
        title="Consent and ledger", description=DESCRIPTION, settings=settings, lifespan=lifespan
    )
    app.include_router(api.router)
    app.include_router(ledger_api.router)
    return app


@asynccontextmanager
async def _running(jobs: list[Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
