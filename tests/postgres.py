"""Find a PostgreSQL for tests (docs/architecture.md) and make throwaway databases on it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import asyncpg

LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _reachable(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await connection.close()
    return True


def _docker_postgres() -> str | None:
    try:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
    except Exception:
        return None
    return str(container.get_connection_url())


def find_postgres() -> tuple[str | None, str]:
    """Return (admin URL, where it came from) or (None, why none was found)."""
    given = os.environ.get("REFEX_TEST_POSTGRES_URL")
    if given:
        return given, "REFEX_TEST_POSTGRES_URL"
    if run_sync(lambda: _reachable(LOCAL_POSTGRES_URL)):
        return LOCAL_POSTGRES_URL, "local server at 127.0.0.1:5432"
    container_url = _docker_postgres()
    if container_url:
        return container_url, "testcontainers"
    return None, (
        "no PostgreSQL: REFEX_TEST_POSTGRES_URL unset, nothing at 127.0.0.1:5432 "
        "and no Docker engine for testcontainers"
    )


def with_database(admin_url: str, name: str) -> str:
    """Return `admin_url` pointing at database `name`."""
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def asyncpg_url(url: str) -> str:
    """Return the SQLAlchemy asyncpg form of a postgresql:// URL."""
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


async def _execute(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(admin_url, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """Create database `name`, copied from `template` when given."""
    clause = f' TEMPLATE "{template}"' if template else ""
    run_sync(lambda: _execute(admin_url, f'CREATE DATABASE "{name}"{clause}'))


def recreate_database(admin_url: str, name: str) -> None:
    """Create database `name` afresh, dropping what an earlier, failed attempt left behind.

    A template whose migration failed stays behind; without this every later test would fail
    with "already exists" instead of showing the migration's own error again.
    """
    drop_database(admin_url, name)
    create_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name`, closing whatever still uses it."""
    run_sync(lambda: _execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _reset_to(url: str, template_url: str) -> None:
    """Empty every table, then put back the rows the migrations wrote (as in the template)."""
    source = await asyncpg.connect(template_url, timeout=10)
    target = await asyncpg.connect(url, timeout=10)
    try:
        tables = [
            row["tablename"]
            for row in await target.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        if not tables:
            return
        names = ", ".join(f'"{t}"' for t in tables)
        await target.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        for table in tables:
            rows = await source.fetch(f'SELECT * FROM "{table}"')
            if rows:
                await target.copy_records_to_table(
                    table, records=[tuple(r) for r in rows], columns=list(rows[0].keys())
                )
    finally:
        await source.close()
        await target.close()


def empty_database(url: str, template_url: str) -> None:
    """Return the database at `url` to the state of `template_url` (freshly migrated)."""
    run_sync(lambda: _reset_to(url, template_url))
