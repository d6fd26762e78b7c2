"""Revision 0004 turns agreements' free-text programmes into registered programmes."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import JSONType, UTCDateTime
from shared.migrations import upgrade
from tests.conftest import RUN_ID
from tests.postgres import asyncpg_url, create_database, drop_database, with_database

ROOT = Path(__file__).resolve().parents[2]
FREE_TEXT = "EU Reintegration Programme 2026"
AGREEMENT = uuid.UUID("0192f000-0000-7000-8000-00000000aa01")
PROVIDER = uuid.UUID("0192f000-0000-7000-8000-00000000aa02")


def registry_revision() -> ModuleType:
    path = ROOT / "services/directory/migrations/versions/0006_programme_registry.py"
    spec = importlib.util.spec_from_file_location("registry_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def url(backend: str, tmp_path: Path, postgres_admin_url: str | None) -> Iterator[str]:
    """An empty database of the test's backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'directory.db'}"
        return
    assert postgres_admin_url is not None
    name = f"refex_t{RUN_ID}_migration_{uuid.uuid4().hex[:8]}"
    create_database(postgres_admin_url, name)
    try:
        yield asyncpg_url(with_database(postgres_admin_url, name))
    finally:
        drop_database(postgres_admin_url, name)


def migrate(url: str, target: str = "head") -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade, "directory", url, target).result()


async def test_free_text_becomes_a_registered_programme(url: str) -> None:
    migrate(url, "0003")
    at = datetime(2026, 2, 1, tzinfo=UTC)
    json_columns = ("name", "description", "admin_areas", "languages")
    organisation = sa.table(
        "organisation",
        sa.column("id", sa.Uuid()),
        *(sa.column(n, JSONType) for n in json_columns),
        *(sa.column(n) for n in ("stakeholder_type", "engagement_level", "country")),
        sa.column("host_office", sa.Boolean()),
        sa.column("row_version", sa.Integer()),
        *(sa.column(n, UTCDateTime()) for n in ("created_at", "updated_at")),
    )
    agreement_json = ("service_categories", "permitted_categories", "emergency_categories")
    agreement = sa.table(
        "agreement",
        *(sa.column(n, sa.Uuid()) for n in ("id", "series_id", "provider_org_id")),
        *(sa.column(n, JSONType) for n in agreement_json),
        *(sa.column(n, sa.Integer()) for n in ("version", "retention_days", "row_version")),
        sa.column("emergency_override_allowed", sa.Boolean()),
        *(sa.column(n) for n in ("purpose", "programme")),
        *(sa.column(n, UTCDateTime()) for n in ("valid_from", "created_at", "updated_at")),
    )
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            organisation.insert().values(
                id=PROVIDER,
                name={"en": "Clinic"},
                description={},
                admin_areas=[],
                languages=[],
                stakeholder_type="ngo",
                engagement_level="information",
                country="NG",
                host_office=False,
                row_version=1,
                created_at=at,
                updated_at=at,
            )
        )
        await connection.execute(
            agreement.insert().values(
                id=AGREEMENT,
                series_id=AGREEMENT,
                provider_org_id=PROVIDER,
                service_categories=["health"],
                permitted_categories=["contact"],
                emergency_categories=[],
                version=1,
                retention_days=30,
                row_version=1,
                emergency_override_allowed=False,
                purpose="referral",
                programme=FREE_TEXT,
                valid_from=at,
                created_at=at,
                updated_at=at,
            )
        )
    await engine.dispose()
    migrate(url)
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        code = await connection.scalar(sa.text("SELECT programme FROM agreement"))
        registered = (
            await connection.execute(sa.text("SELECT code, donor, starts_at FROM programme"))
        ).all()
    await engine.dispose()
    assert code == registry_revision().slug(FREE_TEXT) == "eu-reintegration-programme-2026"
    assert [(row[0], row[1]) for row in registered] == [(code, None)]
