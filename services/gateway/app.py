"""Build the gateway service's ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.gateway import api
from services.gateway.settings import GatewaySettings
from shared.app import build_service_app


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Create the gateway app; settings come from the environment unless given."""
    settings = settings or GatewaySettings()
    app = build_service_app(
        title="Referral Exchange gateway",
        description=(
            "The single front door: OAuth 2.0 client credentials, "
            "rate limits, proxying and the merged API documentation."
        ),
        settings=settings,
    )
    app.include_router(api.router)
    return app
