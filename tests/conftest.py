"""Fixtures for every test: backends, fresh migrated databases, tokens, in-process apps."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.registry import WITH_MIGRATIONS
from shared.migrations import upgrade
from shared.testing import TokenMinter
from tests.postgres import (
    asyncpg_url,
    create_database,
    drop_database,
    empty_database,
    find_postgres,
    recreate_database,
    with_database,
)

BACKENDS = ("sqlite", "postgresql")
MIGRATED = {entry.name for entry in WITH_MIGRATIONS}
RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    """The PostgreSQL server tests use; under CI=true its absence fails the run."""
    url, source = find_postgres()
    if url is None and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires PostgreSQL: {source}")
    return url


def migrate_now(service: str, url: str) -> None:
    """Apply migrations from sync code, also when an async fixture's event loop is running."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade, service, url).result()


class DatabaseFactory:
    """Fresh, migrated databases per test, cloned from a per-run migrated template."""

    def __init__(self, root: Path, postgres_admin_url: str | None) -> None:
        self.root = root
        self.admin_url = postgres_admin_url
        self.templates: dict[tuple[str, str], str] = {}
        self.created: list[tuple[str, str]] = []
        self.kept: list[tuple[str, str]] = []
        self.pool: dict[str, list[str]] = {}

    def _template(self, service: str, backend: str) -> str:
        key = (service, backend)
        if key not in self.templates:
            if backend == "sqlite":
                path = self.root / f"template-{service}.db"
                migrate_now(service, f"sqlite+aiosqlite:///{path}")
                self.templates[key] = str(path)
            else:
                assert self.admin_url is not None
                name = f"refex_t{RUN_ID}_{service}_template"
                recreate_database(self.admin_url, name)
                migrate_now(service, asyncpg_url(with_database(self.admin_url, name)))
                self.templates[key] = name
        return self.templates[key]

    def fresh(self, service: str, backend: str, *, keep: bool = False) -> str:
        """Return the URL of an empty database holding `service`'s migrated schema.

        PostgreSQL databases are reused: creating one from a template costs ~0.5 s, emptying
        a released one with TRUNCATE a few milliseconds. `keep` leases it until `release`.
        """
        template = self._template(service, backend)
        if backend == "sqlite":
            path = self.root / f"{service}-{uuid.uuid4().hex[:12]}.db"
            shutil.copyfile(template, path)
            return f"sqlite+aiosqlite:///{path}"
        assert self.admin_url is not None
        pool = self.pool.setdefault(service, [])
        if pool:
            name = pool.pop()
            empty_database(
                with_database(self.admin_url, name), with_database(self.admin_url, template)
            )
        else:
            name = f"refex_t{RUN_ID}_{service}_{uuid.uuid4().hex[:12]}"
            create_database(self.admin_url, name, template=template)
        (self.kept if keep else self.created).append((service, name))
        return asyncpg_url(with_database(self.admin_url, name))

    def release(self, url: str) -> None:
        """Give a kept database back to the pool."""
        for entry in list(self.kept):
            if url.endswith("/" + entry[1]):
                self.kept.remove(entry)
                self.pool.setdefault(entry[0], []).append(entry[1])

    def drop_created(self) -> None:
        """Give the per-test PostgreSQL databases back to the pool (emptied on reuse)."""
        while self.created:
            service, name = self.created.pop()
            self.pool.setdefault(service, []).append(name)

    def drop_all(self) -> None:
        """Drop every database this run made."""
        self.drop_created()
        names = [n for names in self.pool.values() for n in names] + [n for _, n in self.kept]
        for name in names:
            assert self.admin_url is not None
            drop_database(self.admin_url, name)
        self.pool.clear()
        self.kept.clear()

    def drop_templates(self) -> None:
        """Drop the PostgreSQL templates at the end of the run."""
        for (_, backend), name in self.templates.items():
            if backend == "postgresql" and self.admin_url is not None:
                drop_database(self.admin_url, name)


@pytest.fixture(scope="session")
def database_factory(
    tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str | None
) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"), postgres_admin_url)
    yield factory
    factory.drop_all()
    factory.drop_templates()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, postgres_admin_url: str | None) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql" and postgres_admin_url is None:
        pytest.skip("PostgreSQL not available (see the session header for why)")
    return str(request.param)


@pytest.fixture
def fresh_database(
    database_factory: DatabaseFactory, backend: str
) -> Iterator[Callable[[str], str]]:
    """Make fresh migrated databases for services on this test's backend."""
    yield lambda service: database_factory.fresh(service, backend)
    database_factory.drop_created()


@pytest.fixture(scope="session")
def token_minter() -> TokenMinter:
    """Signs access tokens the services under test accept."""
    return TokenMinter()


@pytest.fixture(scope="session")
def jwks_file(tmp_path_factory: pytest.TempPathFactory, token_minter: TokenMinter) -> Path:
    return token_minter.write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json")


@pytest.fixture
def test_settings(fresh_database: Callable[[str], str], jwks_file: Path) -> Callable[..., Any]:
    """Build a service's settings for a test: fresh database, test JWKS, test environment."""

    def build(settings_cls: type[Any], **overrides: Any) -> Any:
        values: dict[str, Any] = {
            "environment": "test",
            "jwks_file": jwks_file,
            "log_level": "WARNING",
            # Test partners listen on 127.0.0.1; refusal tests set it False explicitly.
            "partner_urls_allow_private": True,
        }
        if settings_cls.service_name in MIGRATED:  # the workspace keeps no database
            values["database_url"] = fresh_database(settings_cls.service_name)
        values.update(overrides)
        return settings_cls(**values)

    return build


@asynccontextmanager
async def serve_in_process(
    app: FastAPI, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """Run `app`'s lifespan and give an HTTP client talking to it in process."""
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url=base_url) as client,
    ):
        yield client


@pytest.fixture
def in_process() -> Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """`async with in_process(app) as client:` drives an app through HTTP in this process."""
    return serve_in_process


@pytest.fixture(scope="session")
def seeded_databases(
    tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str | None
) -> Iterator[Any]:
    """The demo directory seeded once per backend (directory and referral tests share it)."""
    from tests.directory.conftest import SeededDatabases

    databases = SeededDatabases(tmp_path_factory.mktemp("seeded"), postgres_admin_url)
    yield databases
    databases.drop(templates=True)
