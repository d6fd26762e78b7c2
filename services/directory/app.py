"""Build the directory service's ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.directory import api
from services.directory.settings import DirectorySettings
from shared.app import build_service_app


def create_app(settings: DirectorySettings | None = None) -> FastAPI:
    """Create the directory app; settings come from the environment unless given."""
    settings = settings or DirectorySettings()
    app = build_service_app(
        title="Service directory",
        description=(
            "Organisations, services, focal points, SOP agreements and public "
            "keys of partners, searchable (Open Referral HSDS 3 compatible)."
        ),
        settings=settings,
    )
    app.include_router(api.router)
    return app
