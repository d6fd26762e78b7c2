"""OpenAPI operationIds are `<resource>.<verb>`, declared by each route and unique when merged.

Generated SDKs name their methods after them (`client.referrals.create(...)`), so they are
checked over each service's own document and over the gateway's merged one.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.gateway.openapi import HTTP_METHODS, external_path, merge_documents
from shared.app import OPERATION_ID, operation_id
from tests.gateway.conftest import admin_headers, sqlite_gateway_settings  # noqa: F401 (fixture)
from tests.gateway.test_openapi import (  # noqa: F401 (fixtures)
    docs_gateway,
    gateway_settings,
)
from tests.test_openapi_statuses import APPS

# The names the issue promised SDK users, and a few more of each service.
EXPECTED = {
    ("referral", "post", "/referrals"): "referrals.create",
    ("referral", "get", "/referrals"): "referrals.list",
    ("referral", "get", "/referrals/{referral_id}"): "referrals.get",
    ("referral", "post", "/referrals/{referral_id}/status"): "referrals.changeStatus",
    ("referral", "post", "/referrals/open"): "openReferrals.create",
    ("consent", "post", "/consents/{consent_id}/withdraw"): "consents.withdraw",
    ("consent", "get", "/ledger/entries/{index}/proof"): "ledger.getInclusionProof",
    ("directory", "get", "/services/search"): "directory.services.search",
    ("directory", "patch", "/focal-points/{focal_point_id}"): "directory.focalPoints.update",
    ("gateway", "post", "/oauth/token"): "oauth.issueToken",
    ("gateway", "get", "/healthz"): "operations.liveness",
}


def operation_ids(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(path, method) -> operationId for every operation of a document."""
    return {
        (path, method): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


class TestServiceDocuments:
    @pytest.mark.parametrize("service", sorted(APPS))
    def test_every_route_declares_a_resource_dot_verb_name(self, service: str) -> None:
        routes = [
            r for r in APPS[service].routes if isinstance(r, APIRoute) and r.include_in_schema
        ]
        undeclared = [
            f"{sorted(r.methods)} {r.path} ({r.name})"
            for r in routes
            if not OPERATION_ID.fullmatch(r.name)
        ]
        assert routes
        assert undeclared == [], "add name='<resource>.<verb>' to these routes"

    @pytest.mark.parametrize(("where", "expected"), EXPECTED.items(), ids=EXPECTED.values())
    def test_operation_ids_read_as_resource_dot_verb(
        self, where: tuple[str, str, str], expected: str
    ) -> None:
        service, method, path = where
        assert operation_ids(APPS[service].openapi())[(path, method)] == expected

    @pytest.mark.parametrize("service", sorted(APPS))
    def test_operation_ids_are_unique_within_a_service(self, service: str) -> None:
        ids = list(operation_ids(APPS[service].openapi()).values())
        assert len(ids) == len(set(ids))

    def test_a_route_without_a_name_still_gets_a_dotted_id(self) -> None:
        async def list_things() -> None:
            """A route someone forgot to name."""

        route = APIRoute("/things", list_things, tags=["focal points"])
        assert operation_id(route) == "focalPoints.listThings"
        assert OPERATION_ID.fullmatch(operation_id(route))


class TestMergedDocument:
    async def test_operation_ids_are_unique_and_keep_the_services_names(
        self,
        docs_gateway: Any,  # noqa: F811 (the imported fixture)
    ) -> None:
        http, app, apps, _ = docs_gateway
        await http.post("/admin/openapi/refresh", headers=await admin_headers(http, app))
        merged = operation_ids((await http.get("/openapi.json")).json())
        assert len(merged) > 60
        assert len(set(merged.values())) == len(merged)
        assert all(OPERATION_ID.fullmatch(name) for name in merged.values())
        assert merged[("/api/v1/referrals", "post")] == "referrals.create"
        assert merged[("/api/v1/directory/services/search", "get")] == "directory.services.search"
        for service, upstream in published_upstream_ids(apps).items():
            assert merged[service] == upstream

    def test_a_clash_between_services_is_qualified_not_duplicated(self) -> None:
        own = {"openapi": "3.1.0", "info": {"title": "g", "version": "1"}, "paths": {}}
        upstreams = {
            "consent": one_operation("/consents", "things.list"),
            "referral": one_operation("/referrals", "things.list"),
        }
        merged = merge_documents(own, upstreams, roles=["admin"])
        ids = operation_ids(merged)
        assert ids[("/api/v1/consents", "get")] == "things.list"
        assert ids[("/api/v1/referrals", "get")] == "referral.things.list"


def published_upstream_ids(apps: dict[str, FastAPI]) -> dict[tuple[str, str], str]:
    """(public path, method) -> the operationId the service itself gives the operation."""
    published = {}
    for host, app in apps.items():
        service = host.removesuffix(".test")
        for (path, method), name in operation_ids(app.openapi()).items():
            public = external_path(service, path)
            if public is not None:
                published[(public, method)] = name
    return published


def one_operation(path: str, name: str) -> dict[str, Any]:
    """A service document with a single GET operation named `name`."""
    response = {"200": {"description": "ok"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "s", "version": "1"},
        "paths": {path: {"get": {"operationId": name, "responses": response}}},
    }
