"""Every service answers health, readiness, info, metrics and problems the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.registry import WITH_MIGRATIONS
from tests.services_under_test import SERVICES, TEST_SECRETS

PROBLEM = "application/problem+json"


def _app(name: str, test_settings: Callable[..., Any]) -> Any:
    settings_cls, create_app = SERVICES[name]
    return create_app(test_settings(settings_cls, **TEST_SECRETS.get(name, {})))


@pytest.fixture(params=sorted(SERVICES))
def service_app(request: pytest.FixtureRequest, test_settings: Callable[..., Any]) -> Any:
    return _app(request.param, test_settings)


@pytest.fixture(params=sorted(entry.name for entry in WITH_MIGRATIONS))
def database_app(request: pytest.FixtureRequest, test_settings: Callable[..., Any]) -> Any:
    """A service that keeps a database (the workspace keeps none)."""
    return _app(request.param, test_settings)


def only_database(app: Any) -> None:
    """Keep the shared database check; upstream checks are tested by each service."""
    app.state.readiness_checks = {"database": app.state.readiness_checks["database"]}


class TestOperationalEndpoints:
    async def test_healthz_answers_ok(self, service_app: Any, in_process: Any) -> None:
        async with in_process(service_app) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    async def test_readyz_checks_the_database(self, database_app: Any, in_process: Any) -> None:
        async with in_process(database_app) as client:
            only_database(database_app)
            response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["database"] == "ok"

    async def test_readyz_says_unavailable_when_the_database_is_gone(
        self, database_app: Any, in_process: Any
    ) -> None:
        async with in_process(database_app) as client:
            await database_app.state.db.dispose()

            async def broken() -> None:
                raise ConnectionError

            only_database(database_app)
            database_app.state.readiness_checks["database"] = broken
            response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "checks": {"database": "unreachable"}}

    async def test_info_names_service_backend_and_migration_head(
        self, database_app: Any, in_process: Any, backend: str
    ) -> None:
        async with in_process(database_app) as client:
            info = (await client.get("/info")).json()
        assert info["name"] == database_app.state.settings.service_name
        assert info["database_backend"] == backend
        assert info["migration_head"]

    async def test_metrics_count_requests_by_route_template(
        self, service_app: Any, in_process: Any
    ) -> None:
        async with in_process(service_app) as client:
            await client.get("/healthz")
            text = (await client.get("/metrics")).text
        assert 'route="/healthz"' in text
        assert "refex_http_request_duration_seconds_bucket" in text

    async def test_metrics_carry_the_standard_process_and_gc_series(
        self, service_app: Any, in_process: Any
    ) -> None:
        async with in_process(service_app) as client:
            text = (await client.get("/metrics")).text
        for series in ("process_resident_memory_bytes", "python_gc_collections_total"):
            assert f"\n{series}" in text, series

    async def test_every_response_carries_a_request_id(
        self, service_app: Any, in_process: Any
    ) -> None:
        async with in_process(service_app) as client:
            given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
            made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
        assert given.headers["x-request-id"] == "abc-123"
        assert made.headers["x-request-id"] != "bad id with spaces"


class TestProblems:
    async def test_unknown_route_is_a_404_problem(self, service_app: Any, in_process: Any) -> None:
        async with in_process(service_app) as client:
            response = await client.get("/no/such/thing")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["type"] == "urn:refex:problem:not-found"
        assert body["status"] == 404
        assert body["detail"]
        assert body["instance"].startswith("urn:request:")

    async def test_wrong_method_is_a_405_problem(self, service_app: Any, in_process: Any) -> None:
        async with in_process(service_app) as client:
            response = await client.delete("/healthz")
        assert response.status_code == 405
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:refex:problem:method-not-allowed"

    async def test_oversize_body_is_a_413_problem(self, service_app: Any, in_process: Any) -> None:
        limit = service_app.state.settings.max_body_bytes
        async with in_process(service_app) as client:
            response = await client.post("/healthz", content=b"x" * (limit + 1))
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert "KiB" in response.json()["detail"]

    async def test_oversize_chunked_body_is_a_413_problem(
        self, service_app: Any, in_process: Any
    ) -> None:
        async def chunks() -> Any:
            for _ in range(20):
                yield b"y" * 100_000

        async with in_process(service_app) as client:
            response = await client.post("/healthz", content=chunks())
        assert response.status_code == 413
