"""The read path: single reads use their own connections and see every committed change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError

from services.directory.app import create_app
from services.directory.models import Service
from services.directory.settings import DirectorySettings
from shared import db as shared_db
from shared.db import Database
from shared.demo import DEMO_HEALTH_SERVICE
from shared.testing import TokenMinter
from tests.directory.conftest import Directory, SeededDatabases

PATH = f"/services/{DEMO_HEALTH_SERVICE}"


@pytest.fixture
async def served(
    seeded_databases: SeededDatabases,
    backend: str,
    jwks_file: Path,
    token_minter: TokenMinter,
    in_process: Any,
) -> AsyncIterator[tuple[Directory, FastAPI]]:
    """The seeded demo directory in process, with its app (to reach its database)."""
    settings = DirectorySettings(
        database_url=seeded_databases.fresh(backend),
        environment="test",
        jwks_file=jwks_file,
        log_level="WARNING",
    )
    app = create_app(settings)
    try:
        async with in_process(app) as client:
            yield Directory(client, token_minter, settings), app
    finally:
        seeded_databases.drop(templates=False)


class TestSingleRead:
    async def test_a_read_answers_while_a_write_holds_the_writer_and_sees_only_commits(
        self, served: tuple[Directory, FastAPI]
    ) -> None:
        directory, app = served
        database: Database = app.state.db
        before = (await directory.client.get(PATH, headers=directory.admin)).json()
        async with database.sessionmaker() as writer:
            await writer.execute(
                update(Service)
                .where(Service.id == DEMO_HEALTH_SERVICE)
                .values(capacity=(before["capacity"] or 0) + 7)
            )
            # On SQLite the writer's only connection is taken: the read needs one of its own.
            during = await directory.client.get(PATH, headers=directory.admin)
            assert during.status_code == 200
            assert during.json()["capacity"] == before["capacity"]
            await writer.commit()
        after = await directory.client.get(PATH, headers=directory.admin)
        assert after.json()["capacity"] == (before["capacity"] or 0) + 7

    async def test_a_change_is_visible_to_the_next_read_with_a_new_etag(
        self, served: tuple[Directory, FastAPI]
    ) -> None:
        directory, _ = served
        first = await directory.client.get(PATH, headers=directory.admin)
        changed = await directory.client.patch(
            PATH,
            json={"accepting_referrals": not first.json()["accepting_referrals"]},
            headers={**directory.admin, "If-Match": first.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
        second = await directory.client.get(PATH, headers=directory.admin)
        assert second.json()["accepting_referrals"] is not first.json()["accepting_referrals"]
        assert second.headers["etag"] == changed.headers["etag"] != first.headers["etag"]

    async def test_the_read_session_cannot_write(
        self, served: tuple[Directory, FastAPI], backend: str
    ) -> None:
        _, app = served
        database: Database = app.state.db
        if backend != "sqlite":
            pytest.skip("PostgreSQL reads share the writer's pool, in autocommit")
        async with database.read_sessionmaker() as reader:
            with pytest.raises(OperationalError, match="readonly"):
                await reader.execute(text("UPDATE service SET capacity = 1"))


class TestPooledConnections:
    async def test_a_connection_closed_by_the_server_is_replaced_before_use(
        self, served: tuple[Directory, FastAPI], backend: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        directory, app = served
        if backend != "postgresql":
            pytest.skip("SQLite connections are files, never closed by a server")
        database: Database = app.state.db
        assert (await directory.client.get(PATH, headers=directory.admin)).status_code == 200
        monkeypatch.setattr(shared_db, "PING_IF_IDLE_S", 0.0)
        # From outside the pool, as a server restart or an idle-timeout proxy would.
        outside = await asyncpg.connect(
            database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        )
        try:
            await outside.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await outside.close()
        again = await directory.client.get(PATH, headers=directory.admin)
        assert again.status_code == 200
