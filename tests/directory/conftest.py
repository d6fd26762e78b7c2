"""A directory service in process, on a fresh database of the test's backend."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from services.directory.app import create_app
from services.directory.seed import seed_demo
from services.directory.settings import DirectorySettings
from shared.demo import ADMIN_ORG, PLATFORM_ORG
from shared.migrations import upgrade
from shared.testing import TokenMinter
from tests.conftest import RUN_ID
from tests.postgres import (
    asyncpg_url,
    create_database,
    drop_database,
    recreate_database,
    run_sync,
    with_database,
)


@dataclass
class Directory:
    """An HTTP client to the directory and headers for each kind of caller."""

    client: httpx.AsyncClient
    minter: TokenMinter
    settings: DirectorySettings

    def as_role(self, role: str, org: object = ADMIN_ORG) -> dict[str, str]:
        """Authorization header of a caller with `role` in organisation `org`."""
        return self.minter.headers(roles=[role], org=str(org), client=f"{role}-client")

    @property
    def admin(self) -> dict[str, str]:
        return self.as_role("admin", ADMIN_ORG)

    @property
    def service(self) -> dict[str, str]:
        return self.as_role("service", PLATFORM_ORG)

    async def snapshot(self, path: str) -> Any:
        """Read `path` as admin (to assert nothing changed after a rejected request)."""
        response = await self.client.get(path, headers=self.admin)
        return response.status_code, response.json()


def public_jwk(kid: str) -> dict[str, Any]:
    """A fresh public P-256 encryption JWK."""
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "enc"})
    return dict(key.as_dict(private=False))


class SeededDatabases:
    """The demo directory seeded once per backend, copied for each test (seeding takes ~1 s)."""

    def __init__(self, root: Path, admin_url: str | None) -> None:
        self.root = root
        self.admin_url = admin_url
        self.templates: dict[str, str] = {}
        self.created: list[str] = []

    def _template(self, backend: str) -> str:
        if backend not in self.templates:
            if backend == "sqlite":
                name = str(self.root / "seeded-directory.db")
                url = f"sqlite+aiosqlite:///{name}"
            else:
                assert self.admin_url is not None
                name = f"refex_t{RUN_ID}_directory_seeded"
                recreate_database(self.admin_url, name)
                url = asyncpg_url(with_database(self.admin_url, name))
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(upgrade, "directory", url).result()  # it runs its own event loop
            settings = DirectorySettings(database_url=url, environment="test")
            previous = Path.cwd()
            os.chdir(self.root)  # the demo private keys land under root/var/
            try:
                run_sync(lambda: seed_demo(settings))
            finally:
                os.chdir(previous)
            self.templates[backend] = name
        return self.templates[backend]

    def fresh(self, backend: str) -> str:
        """Return the URL of a new copy of the seeded demo directory."""
        template = self._template(backend)
        if backend == "sqlite":
            path = self.root / f"directory-{uuid.uuid4().hex[:12]}.db"
            shutil.copyfile(template, path)
            return f"sqlite+aiosqlite:///{path}"
        assert self.admin_url is not None
        name = f"refex_t{RUN_ID}_directory_{uuid.uuid4().hex[:12]}"
        create_database(self.admin_url, name, template=template)
        self.created.append(name)
        return asyncpg_url(with_database(self.admin_url, name))

    def drop(self, *, templates: bool) -> None:
        """Drop the copies (and the templates at the end of the run)."""
        names = self.created + (
            [n for b, n in self.templates.items() if b == "postgresql"] if templates else []
        )
        for name in names:
            assert self.admin_url is not None
            drop_database(self.admin_url, name)
        self.created.clear()


@pytest.fixture
async def directory(
    seeded_databases: SeededDatabases,
    backend: str,
    jwks_file: Path,
    token_minter: TokenMinter,
    in_process: Any,
) -> AsyncIterator[Directory]:
    """The demo directory (seeded), served in process."""
    settings = DirectorySettings(
        database_url=seeded_databases.fresh(backend),
        environment="test",
        jwks_file=jwks_file,
        log_level="WARNING",
    )
    try:
        async with in_process(create_app(settings)) as client:
            yield Directory(client, token_minter, settings)
    finally:
        seeded_databases.drop(templates=False)


@pytest.fixture
async def empty_directory(
    test_settings: Callable[..., Any], token_minter: TokenMinter, in_process: Any
) -> AsyncIterator[Directory]:
    """A directory with nothing in it."""
    settings = test_settings(DirectorySettings)
    async with in_process(create_app(settings)) as client:
        yield Directory(client, token_minter, settings)
