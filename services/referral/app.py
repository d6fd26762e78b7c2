"""Build the referral service's ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.referral import api
from services.referral.settings import ReferralSettings
from shared.app import build_service_app


def create_app(settings: ReferralSettings | None = None) -> FastAPI:
    """Create the referral app; settings come from the environment unless given."""
    settings = settings or ReferralSettings()
    app = build_service_app(
        title="Referral routing",
        description=(
            "Minimised, consented, encrypted referrals from return "
            "offices to service providers, and their lifecycle."
        ),
        settings=settings,
    )
    app.include_router(api.router)
    return app
