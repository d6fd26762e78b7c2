"""Search: filters, distance, pagination, opening hours, and the same answers on both backends."""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.directory import search as search_module
from services.directory.app import create_app
from services.directory.generator import load
from services.directory.search import distance_km
from services.directory.settings import DirectorySettings
from shared.demo import ADMIN_ORG, DEMO_HEALTH_SERVICE
from shared.pagination import encode_cursor
from shared.testing import TokenMinter
from tests.conftest import DatabaseFactory, serve_in_process
from tests.directory.conftest import Directory
from tests.postgres import run_sync

GENERATED = 400
QUERIES: list[dict[str, Any]] = [
    {},
    {"category": ["health", "housing"], "country": "NG"},
    {"country": "SN", "accepting": "true"},
    {"admin_area": "NG-LA", "language": "yo"},
    {"q": "counselling"},
    {"q": "legal aid", "country": "GH"},
    {"q": "Orientation"},
    {"near": "6.52,3.38", "radius_km": 40},
    {"near": "14.72,-17.47", "radius_km": 60, "category": ["tvet", "employment", "education"]},
    {"near": "6.52,3.38", "radius_km": 80, "q": "clinic", "accepting": "true"},
    {"q": "returnees", "near": "33.32,44.37", "radius_km": 100, "sort": "relevance"},
]


async def all_pages(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Follow next_cursor to the end, 7 at a time."""
    hits: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/services/search", params=query, headers=headers)
        assert response.status_code == 200, response.text
        hits.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return hits


@pytest.fixture
async def generated(
    request: pytest.FixtureRequest,
    database_factory: DatabaseFactory,
    jwks_file: Path,
    token_minter: TokenMinter,
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The same generated directory on SQLite and PostgreSQL, each served in process."""
    if database_factory.admin_url is None:
        pytest.skip("PostgreSQL not available")
    clients: dict[str, httpx.AsyncClient] = {}
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        for backend in ("sqlite", "postgresql"):
            url = database_factory.fresh("directory", backend)
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(run_sync, lambda url=url: load(url, GENERATED, seed=7)).result()
            settings = DirectorySettings(
                database_url=url, environment="test", jwks_file=jwks_file, log_level="WARNING"
            )
            clients[backend] = await stack.enter_async_context(
                serve_in_process(create_app(settings))
            )
        yield clients
    database_factory.drop_created()


def _satisfies(hit: dict[str, Any], params: dict[str, Any]) -> bool:
    checks = [
        not params.get("category") or hit["category"] in params["category"],
        not params.get("country") or hit["country"] == params["country"],
        not params.get("admin_area") or params["admin_area"] in hit["admin_areas"],
        not params.get("language") or params["language"] in hit["languages"],
        params.get("accepting") != "true" or hit["accepting_referrals"],
    ]
    return all(checks)


class TestSameResultsOnBothBackends:
    async def test_every_query_returns_the_same_services(
        self, generated: dict[str, httpx.AsyncClient], token_minter: TokenMinter
    ) -> None:
        headers = token_minter.headers(roles=["host_office"], org=str(ADMIN_ORG))
        for params in QUERIES:
            lite = await all_pages(generated["sqlite"], headers, params)
            pg = await all_pages(generated["postgresql"], headers, params)
            assert lite, params  # each query finds something in the generated data
            assert len({h["id"] for h in lite}) == len(lite), params  # no page repeats a hit
            if "q" in params and params.get("sort") != "distance" and "near" not in params:
                # the engines rank differently (bm25 / ts_rank); the matches are the same
                assert sorted(h["id"] for h in lite) == sorted(h["id"] for h in pg), params
            elif "q" in params and params.get("sort") == "relevance":
                assert sorted(h["id"] for h in lite) == sorted(h["id"] for h in pg), params
            else:
                assert [h["id"] for h in lite] == [h["id"] for h in pg], params
            assert all(_satisfies(hit, params) for hit in lite), params

    async def test_radius_results_are_inside_and_nearest_first(
        self, generated: dict[str, httpx.AsyncClient], token_minter: TokenMinter
    ) -> None:
        headers = token_minter.headers(roles=["auditor"], org=str(ADMIN_ORG))
        for backend, client in generated.items():
            hits = await all_pages(client, headers, {"near": "6.52,3.38", "radius_km": 40})
            distances = [h["distance_km"] for h in hits]
            assert distances == sorted(distances), backend
            assert all(d <= 40 for d in distances), backend
            everything = await all_pages(client, headers, {"country": "NG"})
            inside = [
                h
                for h in everything
                if distance_km((6.52, 3.38), (h["latitude"], h["longitude"])) <= 40
            ]
            assert len(inside) == len(hits), backend


BAD_PARAMETERS: list[dict[str, Any]] = [
    {"near": "91,3"},
    {"near": "6.5"},
    {"near": "6.5,3.3", "radius_km": 0},
    {"category": "astrology"},
    {"country": "XX"},
    {"admin_area": "NG-ZZ"},
    {"language": "klingon"},
    {"sort": "distance"},
    {"cursor": "garbage!"},
    {"q": "x" * 201},
]


class TestSearchBehaviour:
    async def test_text_is_accent_and_case_insensitive(self, directory: Directory) -> None:
        created = await directory.client.post(
            "/services",
            json={
                "organisation_id": str(ADMIN_ORG),
                "category": "legal",
                "name": {"fr": "Aide juridique à Thiès"},
                "country": "SN",
            },
            headers=directory.admin,
        )
        assert created.status_code == 201, created.text
        for query in ("THIES juridique", "thiès", "aide"):
            found = await directory.client.get(
                "/services/search",
                params={"q": query, "category": "legal"},
                headers=directory.admin,
            )
            assert created.json()["id"] in [h["id"] for h in found.json()["items"]], query

    async def test_name_matches_rank_above_description_matches(self, directory: Directory) -> None:
        body = {"organisation_id": str(ADMIN_ORG), "category": "legal", "country": "SN"}
        in_name = {**body, "name": {"en": "Zebrafinch legal desk"}}
        in_text = {**body, "name": {"en": "Legal desk"}, "description": {"en": "zebrafinch"}}
        ids = []
        for service in (in_text, in_name):
            response = await directory.client.post(
                "/services", json=service, headers=directory.admin
            )
            ids.append(response.json()["id"])
        found = await directory.client.get(
            "/services/search", params={"q": "zebrafinch"}, headers=directory.admin
        )
        assert [h["id"] for h in found.json()["items"]] == [ids[1], ids[0]]

    async def test_open_now_uses_the_focal_points_hours(
        self, directory: Directory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        params = {"category": "health", "country": "NG", "open_now": "true", "limit": 200}
        monkeypatch.setattr(search_module, "utcnow", lambda: datetime(2026, 11, 26, 9, tzinfo=UTC))
        open_thursday = await directory.client.get(
            "/services/search", params=params, headers=directory.admin
        )
        monkeypatch.setattr(search_module, "utcnow", lambda: datetime(2026, 11, 28, 9, tzinfo=UTC))
        open_saturday = await directory.client.get(
            "/services/search", params=params, headers=directory.admin
        )
        assert str(DEMO_HEALTH_SERVICE) in [h["id"] for h in open_thursday.json()["items"]]
        assert open_saturday.json()["items"] == []

    async def test_bad_parameters_are_4xx_problems(self, directory: Directory) -> None:
        for params in BAD_PARAMETERS:
            response = await directory.client.get(
                "/services/search", params=params, headers=directory.admin
            )
            assert response.status_code in (400, 422), params
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["detail"], params

    async def test_a_cursor_from_another_search_is_refused(self, directory: Directory) -> None:
        first = await directory.client.get(
            "/services/search", params={"limit": 1}, headers=directory.admin
        )
        cursor = first.json()["next_cursor"]
        other = await directory.client.get(
            "/services/search", params={"q": "clinic", "cursor": cursor}, headers=directory.admin
        )
        assert other.status_code == 400


class TestForgedCursors:
    async def test_forged_cursor_positions_are_400(self, directory: Directory) -> None:
        for key in (["r", "0; DROP TABLE service"], ["i", "not-an-id"], ["d", -5], ["i", 7]):
            response = await directory.client.get(
                "/services/search",
                params={"q": "clinic" if key[0] == "r" else None, "cursor": encode_cursor(key)}
                | ({"near": "6.5,3.3"} if key[0] == "d" else {}),
                headers=directory.admin,
            )
            assert response.status_code == 400, key

    async def test_naive_agreement_dates_are_422(self, directory: Directory) -> None:
        response = await directory.client.post(
            "/agreements",
            json={
                "provider_org_id": str(ADMIN_ORG),
                "service_categories": ["legal"],
                "permitted_categories": ["contact"],
                "retention_days": 30,
                "valid_from": "2031-01-01T00:00:00",
            },
            headers=directory.admin,
        )
        assert response.status_code == 422
