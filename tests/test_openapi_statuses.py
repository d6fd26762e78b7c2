"""Every status an operation can answer is in the document, and the router agrees with it.

The document rules are checked over each service's own `app.openapi()` and over the gateway's
merged one, operation by operation, so an endpoint added without them fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.directory.app import create_app as create_directory
from services.directory.settings import DirectorySettings
from services.gateway.openapi import HTTP_METHODS, merge_documents
from services.referral.app import create_app as create_referral
from services.referral.settings import ReferralSettings
from services.registry import SERVICE_NAMES, SERVICES
from shared.demo import ADMIN_ORG, HOST_OFFICE_ORG
from shared.errors import PROBLEM_MEDIA_TYPE, problem_type
from shared.testing import TokenMinter
from tests.gateway.conftest import admin_headers, sqlite_gateway_settings  # noqa: F401 (fixture)
from tests.gateway.test_openapi import (  # noqa: F401 (fixtures)
    docs_gateway,
    gateway_settings,
)

DOCUMENT_ONLY: dict[str, Any] = {"environment": "development", "database_url": ""}
Operation = tuple[str, str, dict[str, Any]]


def service_apps() -> dict[str, FastAPI]:
    """Each service with settings enough to build its document (no database is touched)."""
    return {e.name: e.create_app(e.settings_class()(**DOCUMENT_ONLY)) for e in SERVICES}


APPS = service_apps()


def operations(document: dict[str, Any]) -> list[Operation]:
    """(path, method, operation) for every operation of a document."""
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def expected_statuses(path: str, operation: dict[str, Any]) -> set[str]:
    """What our conventions say this operation can answer, read off the operation itself."""
    parameters = {(p["in"], p["name"].lower()) for p in operation.get("parameters", [])}
    body = operation.get("requestBody", {}).get("content", {})
    expected: set[str] = set()
    if operation.get("security"):
        expected |= {"401", "403"}
    if any(where == "path" for where, _ in parameters):
        expected.add("404")
    if parameters or body:
        expected.add("422")
    if "application/json" in body:
        expected |= {"400", "413", "415"}
    if ("query", "cursor") in parameters:
        expected.add("400")
    if ("header", "if-match") in parameters:
        expected.add("412")
    if ("header", "idempotency-key") in parameters:
        expected.add("409")
    if path not in {"/healthz", "/metrics"}:
        expected.add("503")
    return expected


ALL_OPERATIONS = [
    pytest.param(name, path, method, operation, id=f"{name} {method.upper()} {path}")
    for name, app in APPS.items()
    for path, method, operation in operations(app.openapi())
]


@pytest.mark.promise(10)
class TestEveryOperationDocumentsItsStatuses:
    @pytest.mark.parametrize(("service", "path", "method", "operation"), ALL_OPERATIONS)
    def test_the_statuses_its_token_parameters_and_body_can_cause(
        self, service: str, path: str, method: str, operation: dict[str, Any]
    ) -> None:
        missing = expected_statuses(path, operation) - set(operation["responses"])
        assert not missing, f"{service} {method.upper()} {path} does not document {missing}"

    @pytest.mark.parametrize(("service", "path", "method", "operation"), ALL_OPERATIONS)
    def test_each_problem_has_the_problem_schema_an_example_and_a_description(
        self, service: str, path: str, method: str, operation: dict[str, Any]
    ) -> None:
        assert operation.get("summary") and operation.get("description")
        for status, response in operation["responses"].items():
            assert response.get("description"), status
            problem = response.get("content", {}).get(PROBLEM_MEDIA_TYPE)
            if problem is None:
                continue
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert problem["example"]["status"] == int(status)
            assert problem["example"]["type"].startswith(problem_type(""))

    def test_a_route_without_token_parameters_or_body_gets_nothing_it_cannot_answer(
        self,
    ) -> None:
        healthz = APPS["directory"].openapi()["paths"]["/healthz"]["get"]
        assert set(healthz["responses"]) == {"200"}

    def test_the_merged_document_adds_what_the_gateway_itself_answers(self) -> None:
        upstreams = {name: APPS[name].openapi() for name in ("directory", "consent", "referral")}
        merged = merge_documents(APPS["gateway"].openapi(), upstreams, roles=["admin"])
        published = [op for op in operations(merged) if op[0].startswith("/api/v1/")]
        assert len(published) > 40
        for path, method, operation in published:
            gateway = {"401", "429", "503", "504"}
            if "requestBody" in operation:
                gateway.add("413")
            missing = gateway - set(operation["responses"])
            assert not missing, f"{method.upper()} {path} does not document {missing}"


def concrete(path: str) -> str:
    """The path with each parameter replaced by an id-shaped value."""
    parts = [str(uuid.uuid4()) if p.startswith("{") else p for p in path.split("/")]
    return "/".join(parts)


def documented_methods(document: dict[str, Any], path: str) -> set[str]:
    return {m.upper() for m in document["paths"][path] if m in HTTP_METHODS}


@pytest.mark.promise(10)
class TestAllowMatchesTheDocument:
    @pytest.mark.parametrize("service", SERVICE_NAMES)
    async def test_options_on_every_path_lists_exactly_its_documented_methods(
        self, service: str
    ) -> None:
        app = APPS[service]
        document = app.openapi()
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            for path in document["paths"]:
                response = await client.options(concrete(path))
                assert response.status_code == 405, path
                assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
                allow = {m.strip() for m in response.headers["allow"].split(",")}
                assert allow == documented_methods(document, path), path

    async def test_a_method_a_literal_path_lacks_is_405_not_its_neighbour_template(
        self,
    ) -> None:
        transport = httpx.ASGITransport(APPS["directory"])
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            response = await client.patch("/services/search", json={})
        assert response.status_code == 405
        assert response.json()["type"] == problem_type("method-not-allowed")
        assert response.headers["allow"] == "GET"

    async def test_through_the_gateway_options_lists_the_merged_documents_methods(
        self,
        docs_gateway: Any,  # noqa: F811 (the imported fixture)
    ) -> None:
        http, app, _, _ = docs_gateway
        admin = await admin_headers(http, app)
        await http.post("/admin/openapi/refresh", headers=admin)
        document = (await http.get("/openapi.json")).json()
        for path in ("/api/v1/directory/organisations", "/api/v1/ledger/tree-head",
                     "/api/v1/referrals/open", "/admin/clients"):  # fmt: skip
            response = await http.options(path, headers=admin)
            assert response.status_code == 405, path
            allow = {m.strip() for m in response.headers["allow"].split(",")}
            assert allow == documented_methods(document, path), path


@pytest.mark.promise(10)
class TestBodiesNotReadAsJson:
    @pytest.fixture
    async def directory(self, test_settings: Callable[..., Any], in_process: Any) -> Any:
        async with in_process(create_directory(test_settings(DirectorySettings))) as client:
            yield client

    async def test_a_body_sent_as_text_is_415_and_nothing_is_stored(
        self, directory: httpx.AsyncClient, token_minter: TokenMinter
    ) -> None:
        admin = token_minter.headers(roles=["admin"], org=str(ADMIN_ORG))
        before = (await directory.get("/organisations", headers=admin)).json()
        body = b'{"name": "Clinic", "country": "NG", "kind": "provider"}'
        response = await directory.post(
            "/organisations", content=body, headers={**admin, "content-type": "text/plain"}
        )
        assert response.status_code == 415
        assert response.json()["type"] == problem_type("unsupported-media-type")
        assert "Content-Type: application/json" in response.json()["detail"]
        assert (await directory.get("/organisations", headers=admin)).json() == before

    async def test_malformed_json_answers_a_status_the_operation_documents(
        self, directory: httpx.AsyncClient, token_minter: TokenMinter
    ) -> None:
        admin = token_minter.headers(roles=["admin"], org=str(ADMIN_ORG))
        response = await directory.post(
            "/organisations",
            content=b'{"name": ',
            headers={**admin, "content-type": "application/json"},
        )
        documented = APPS["directory"].openapi()["paths"]["/organisations"]["post"]["responses"]
        assert response.status_code == 400
        assert response.json()["type"] == problem_type("malformed-json")
        assert str(response.status_code) in documented

    async def test_a_missing_body_stays_a_422_naming_the_body(
        self, directory: httpx.AsyncClient, token_minter: TokenMinter
    ) -> None:
        admin = token_minter.headers(roles=["admin"], org=str(ADMIN_ORG))
        response = await directory.post("/organisations", headers=admin)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body"]


@pytest.mark.promise(10)
class TestTimesAreValidatedAsDocumented:
    @pytest.fixture
    async def referral(self, test_settings: Callable[..., Any], in_process: Any) -> Any:
        settings = test_settings(
            ReferralSettings, run_workers=False, subject_hash_key=SecretStr("test-key-3c9e1a")
        )
        async with in_process(create_referral(settings)) as client:
            yield client

    @pytest.mark.parametrize("number", ["0.5", "1700000000", "-1", "1e9"])
    async def test_a_number_for_a_date_time_is_a_422_not_a_unix_timestamp(
        self, referral: httpx.AsyncClient, token_minter: TokenMinter, number: str
    ) -> None:
        caller = token_minter.headers(roles=["host_office"], org=str(HOST_OFFICE_ORG))
        response = await referral.get(
            "/referrals", params={"updated_since": number}, headers=caller
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "updated_since"]

    async def test_an_iso_8601_time_is_still_accepted(
        self, referral: httpx.AsyncClient, token_minter: TokenMinter
    ) -> None:
        caller = token_minter.headers(roles=["host_office"], org=str(HOST_OFFICE_ORG))
        params = {"updated_since": "2026-11-25T08:00:00Z"}
        response = await referral.get("/referrals", params=params, headers=caller)
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}
