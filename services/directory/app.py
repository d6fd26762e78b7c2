"""Build the directory service's ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from services.directory import api, costs_api, engagement_api, opportunities_api, situation_api
from services.directory.settings import DirectorySettings
from shared.app import build_service_app

SEARCH_POOL_SIZE = 4


def _asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On PostgreSQL, open the asyncpg pool the search statements run on."""
    settings: DirectorySettings = app.state.settings
    pool = None
    if settings.database_backend == "postgresql":
        pool = await asyncpg.create_pool(
            _asyncpg_dsn(settings.database_url), min_size=1, max_size=SEARCH_POOL_SIZE
        )
    app.state.search_pool = pool
    try:
        yield
    finally:
        if pool is not None:
            await pool.close()


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
        lifespan=lifespan,
    )
    app.include_router(api.router)
    app.include_router(situation_api.router)
    app.include_router(engagement_api.router)
    app.include_router(opportunities_api.router)
    app.include_router(costs_api.router)
    return app
