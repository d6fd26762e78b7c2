"""Alembic plumbing shared by every service's history (one alembic.ini, a section per service).

Which services have a history is for the service registry to say (services/registry.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.db import build_engine

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(service: str, database_url: str) -> Config:
    """Return the Alembic config of `service`'s history, pointed at `database_url`."""
    config = Config(str(ALEMBIC_INI), ini_section=service)
    config.set_main_option("sqlalchemy.url", database_url)
    config.set_main_option(
        "script_location", str(ALEMBIC_INI.parent / "services" / service / "migrations")
    )
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Apply `service`'s migrations up to `revision` (synchronous; call outside an event loop)."""
    command.upgrade(alembic_config(service, database_url), revision)


def run_migrations(metadata: MetaData, default_url: str) -> None:
    """Body of each env.py: run this history online (async engine) or offline (SQL script)."""
    url = context.config.get_main_option("sqlalchemy.url") or default_url
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, metadata))


def _configure_and_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, metadata: MetaData) -> None:
    engine = build_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure_and_run, metadata)
    finally:
        await engine.dispose()
