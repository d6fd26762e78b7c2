"""Agreements name what an emergency override may disclose: a subset of what they permit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.db import JSONType, UTCDateTime, build_engine
from shared.demo import DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG
from shared.migrations import upgrade
from tests.conftest import RUN_ID
from tests.directory.conftest import Directory
from tests.postgres import asyncpg_url, create_database, drop_database, with_database

ALL_THREE = ["identity.basic", "contact", "health.mental"]


def agreement(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sender_org_id": str(HOST_OFFICE_ORG),
        "provider_org_id": str(HEALTH_PROVIDER_ORG),
        "service_categories": ["housing"],
        "permitted_categories": ["identity.basic", "contact", "health.mental", "household"],
        "purpose": "referral",
        "retention_days": 90,
        "valid_from": "2030-01-01T00:00:00Z",
        "valid_until": "2031-01-01T00:00:00Z",
    }
    body.update(changes)
    return body


async def all_agreements(directory: Directory) -> Any:
    return await directory.snapshot("/agreements?limit=200")


class TestCreate:
    @pytest.mark.promise(4)
    async def test_a_permitted_subset_is_stored_in_vocabulary_order(
        self, directory: Directory
    ) -> None:
        created = await directory.client.post(
            "/agreements",
            json=agreement(emergency_categories=["contact", "identity.basic", "contact"]),
            headers=directory.admin,
        )
        assert created.status_code == 201, created.text
        assert created.json()["emergency_categories"] == ["identity.basic", "contact"]
        read = await directory.client.get(
            f"/agreements/{created.json()['id']}", headers=directory.admin
        )
        assert read.json()["emergency_categories"] == ["identity.basic", "contact"]

    @pytest.mark.promise(4)
    async def test_left_out_it_is_the_default(self, directory: Directory) -> None:
        created = await directory.client.post(
            "/agreements", json=agreement(), headers=directory.admin
        )
        assert created.status_code == 201
        assert created.json()["emergency_categories"] == ALL_THREE

    @pytest.mark.promise(4)
    async def test_the_default_keeps_only_what_the_agreement_permits(
        self, directory: Directory
    ) -> None:
        created = await directory.client.post(
            "/agreements",
            json=agreement(permitted_categories=["contact", "skills"]),
            headers=directory.admin,
        )
        assert created.status_code == 201
        assert created.json()["emergency_categories"] == ["contact"]

    @pytest.mark.promise(4)
    async def test_a_category_outside_the_permitted_set_is_422_and_stores_nothing(
        self, directory: Directory
    ) -> None:
        before = await all_agreements(directory)
        response = await directory.client.post(
            "/agreements",
            json=agreement(
                permitted_categories=["identity.basic"],
                emergency_categories=["identity.basic", "health.mental"],
            ),
            headers=directory.admin,
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"].endswith("emergency-categories-not-permitted")
        assert "health.mental" in problem["detail"]
        assert problem["errors"][0]["loc"] == ["body", "emergency_categories"]
        assert await all_agreements(directory) == before

    async def test_an_unknown_category_is_422(self, directory: Directory) -> None:
        before = await all_agreements(directory)
        response = await directory.client.post(
            "/agreements", json=agreement(emergency_categories=["dna"]), headers=directory.admin
        )
        assert response.status_code == 422
        assert await all_agreements(directory) == before


class TestUpdate:
    @pytest.mark.promise(4)
    async def test_admin_narrows_it_and_bad_changes_are_refused(self, directory: Directory) -> None:
        created = await directory.client.post(
            "/agreements", json=agreement(), headers=directory.admin
        )
        path = f"/agreements/{created.json()['id']}"
        narrowed = await directory.client.patch(
            path, json={"emergency_categories": ["identity.basic"]}, headers=directory.admin
        )
        assert narrowed.status_code == 200, narrowed.text
        assert narrowed.json()["emergency_categories"] == ["identity.basic"]
        before = await directory.snapshot(path)
        for change, slug in (
            ({"emergency_categories": ["protection"]}, "emergency-categories-not-permitted"),
            ({"emergency_categories": None}, "validation-failed"),
        ):
            response = await directory.client.patch(path, json=change, headers=directory.admin)
            assert response.status_code == 422, change
            assert response.json()["type"].endswith(slug)
        assert await directory.snapshot(path) == before

    @pytest.mark.promise(4)
    async def test_partners_may_not_change_it(self, directory: Directory) -> None:
        created = await directory.client.post(
            "/agreements", json=agreement(), headers=directory.admin
        )
        path = f"/agreements/{created.json()['id']}"
        response = await directory.client.patch(
            path,
            json={"emergency_categories": ["contact"]},
            headers=directory.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 403
        assert (await directory.snapshot(path))[1]["emergency_categories"] == ALL_THREE


class TestResolve:
    @pytest.mark.promise(4)
    async def test_the_resolution_names_the_emergency_categories(
        self, directory: Directory
    ) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params={"sender_org": str(HOST_OFFICE_ORG), "service_id": str(DEMO_HEALTH_SERVICE)},
            headers=directory.service,
        )
        agreement = response.json()["agreement"]
        # The seeded clinic SOP permits no health.mental, so the default keeps the other two.
        assert "health.mental" not in agreement["permitted_categories"]
        assert agreement["emergency_categories"] == ["identity.basic", "contact"]


AGREEMENT = sa.table(
    "agreement",
    *(
        sa.column(name, kind)
        for name, kind in (
            ("id", sa.Uuid()),
            ("series_id", sa.Uuid()),
            ("version", sa.Integer()),
            ("sender_org_id", sa.Uuid()),
            ("provider_org_id", sa.Uuid()),
            ("service_categories", JSONType),
            ("permitted_categories", JSONType),
            ("purpose", sa.String()),
            ("retention_days", sa.Integer()),
            ("emergency_override_allowed", sa.Boolean()),
            ("valid_from", UTCDateTime()),
            ("row_version", sa.Integer()),
            ("created_at", UTCDateTime()),
            ("updated_at", UTCDateTime()),
        )
    ),
)
ORGANISATION = sa.table(
    "organisation",
    *(
        sa.column(name, kind)
        for name, kind in (
            ("id", sa.Uuid()),
            ("name", JSONType),
            ("description", JSONType),
            ("stakeholder_type", sa.String()),
            ("engagement_level", sa.String()),
            ("host_office", sa.Boolean()),
            ("country", sa.String()),
            ("admin_areas", JSONType),
            ("languages", JSONType),
            ("row_version", sa.Integer()),
            ("created_at", UTCDateTime()),
            ("updated_at", UTCDateTime()),
        )
    ),
)


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, postgres_admin_url: str | None
) -> Iterator[str]:
    """An empty database (no migrations applied) of the test's backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'directory-0001.db'}"
        return
    assert postgres_admin_url is not None
    name = f"refex_t{RUN_ID}_directory_0001_{uuid.uuid4().hex[:8]}"
    create_database(postgres_admin_url, name)
    try:
        yield asyncpg_url(with_database(postgres_admin_url, name))
    finally:
        drop_database(postgres_admin_url, name)


def migrate(url: str, revision: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade, "directory", url, revision).result()


async def run(url: str, *statements: Any) -> list[Any]:
    engine = build_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            results = [await connection.execute(s) for s in statements]
            return [r.all() if r.returns_rows else None for r in results]
    finally:
        await engine.dispose()


class TestMigration:
    @pytest.mark.promise(4)
    async def test_existing_agreements_get_the_default_within_their_permitted_set(
        self, empty_database_url: str
    ) -> None:
        await asyncio.to_thread(migrate, empty_database_url, "0001")
        now = datetime(2026, 1, 1, tzinfo=UTC)
        org = uuid.uuid4()
        wide, narrow = uuid.uuid4(), uuid.uuid4()
        await run(
            empty_database_url,
            ORGANISATION.insert().values(
                id=org, name={"en": "Clinic"}, description={}, stakeholder_type="ngo",
                engagement_level="information", host_office=False, country="NG",
                admin_areas=[], languages=[], row_version=1, created_at=now, updated_at=now,
            ),
            *(
                AGREEMENT.insert().values(
                    id=row_id, series_id=row_id, version=1, sender_org_id=None,
                    provider_org_id=org, service_categories=["health"],
                    permitted_categories=permitted, purpose="referral", retention_days=30,
                    emergency_override_allowed=True, valid_from=now, row_version=1,
                    created_at=now, updated_at=now,
                )
                for row_id, permitted in (
                    (wide, [*ALL_THREE, "household"]),
                    (narrow, ["contact", "skills"]),
                )
            ),
        )  # fmt: skip
        await asyncio.to_thread(migrate, empty_database_url, "0002")
        emergency = sa.column("emergency_categories", JSONType)
        [rows] = await run(empty_database_url, sa.select(AGREEMENT.c.id, emergency))
        assert dict(rows) == {wide: ALL_THREE, narrow: ["contact"]}
