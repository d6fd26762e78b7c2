"""Build the consent service's ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.consent import api
from services.consent.settings import ConsentSettings
from shared.app import build_service_app


def create_app(settings: ConsentSettings | None = None) -> FastAPI:
    """Create the consent app; settings come from the environment unless given."""
    settings = settings or ConsentSettings()
    app = build_service_app(
        title="Consent and ledger",
        description=(
            "Returnees' consents, emergency overrides, disclosure "
            "decisions and the tamper-evident consent ledger."
        ),
        settings=settings,
    )
    app.include_router(api.router)
    return app
