"""The merged API document and the offline documentation pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.directory.app import create_app as create_directory
from services.directory.settings import DirectorySettings
from services.gateway.app import create_app
from services.gateway.openapi import HTTP_METHODS, external_path, merge_documents
from services.referral.app import create_app as create_referral
from services.referral.settings import ReferralSettings
from tests.gateway.conftest import SettingsFactory, admin_headers

UPSTREAMS = {"directory": "directory.test", "consent": "consent.test", "referral": "referral.test"}


@pytest.fixture
def gateway_settings(sqlite_gateway_settings: SettingsFactory) -> SettingsFactory:
    """No database behaviour is tested here: one backend is enough."""
    return sqlite_gateway_settings


class HostRouter(httpx.AsyncBaseTransport):
    """Send each request to the in-process app named by its host; 'down' hosts refuse."""

    def __init__(self, apps: dict[str, FastAPI]) -> None:
        self.transports = {host: httpx.ASGITransport(app) for host, app in apps.items()}
        self.down: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down:
            raise httpx.ConnectError("refused", request=request)
        return await self.transports[host].handle_async_request(request)


def service_apps() -> dict[str, FastAPI]:
    """The three real services (their documents need no database)."""
    common: dict[str, Any] = {"environment": "development", "database_url": ""}
    return {
        "directory.test": create_directory(DirectorySettings(**common)),
        "consent.test": create_consent(ConsentSettings(**common)),
        "referral.test": create_referral(ReferralSettings(**common)),
    }


def upstream_operations(apps: dict[str, FastAPI]) -> set[tuple[str, str]]:
    """Every published (path, method) the services declare, as the gateway should show it."""
    published = set()
    for service, host in UPSTREAMS.items():
        for path, item in apps[host].openapi()["paths"].items():
            public = external_path(service, path)
            if public is not None:
                published |= {(public, m) for m in item if m in HTTP_METHODS}
    return published


@pytest.fixture
async def docs_gateway(gateway_settings: SettingsFactory, in_process: Any) -> Any:
    apps = service_apps()
    router = HostRouter(apps)
    urls = {f"{name}_url": f"http://{host}" for name, host in UPSTREAMS.items()}
    app = create_app(await gateway_settings(**urls), upstream_transport=router)
    async with in_process(app) as http:
        yield http, app, apps, router


class TestSignInOperations:
    async def test_they_are_documented_with_summaries_examples_and_statuses(
        self, docs_gateway: Any
    ) -> None:
        http, _, _, _ = docs_gateway
        paths = (await http.get("/openapi.json")).json()["paths"]
        page, form = paths["/oauth/authorize"]["get"], paths["/oauth/authorize"]["post"]
        assert {"200", "303", "400"} <= set(page["responses"])
        assert {"200", "303", "400", "403", "429"} <= set(form["responses"])
        assert "text/html" in page["responses"]["200"]["content"]
        assert {p["name"] for p in page["parameters"]} >= {"code_challenge", "redirect_uri"}
        token_form = paths["/oauth/token"]["post"]["requestBody"]["content"]
        grants = token_form["application/x-www-form-urlencoded"]["schema"]["properties"]
        assert "authorization_code" in grants["grant_type"]["enum"]
        assert {"200", "400", "401"} <= set(paths["/oauth/revoke"]["post"]["responses"])
        for path, item in paths.items():
            if path.startswith(("/admin/users", "/oauth/")):
                for method, operation in item.items():
                    assert operation.get("summary"), (method, path)


class TestMergedDocument:
    async def test_it_is_valid_and_contains_every_service_operation(
        self, docs_gateway: Any
    ) -> None:
        http, app, apps, _ = docs_gateway
        refreshed = await http.post(
            "/admin/openapi/refresh", headers=await admin_headers(http, app)
        )
        assert refreshed.json()["missing"] == []
        document = (await http.get("/openapi.json")).json()
        validate(document)
        merged = {
            (p, m) for p, item in document["paths"].items() for m in item if m in HTTP_METHODS
        }
        expected = upstream_operations(apps)
        assert len(expected) > 10
        assert expected <= merged
        assert ("/oauth/token", "post") in merged

    async def test_internal_and_operational_paths_are_not_published(
        self, docs_gateway: Any
    ) -> None:
        http, app, _, _ = docs_gateway
        await http.post("/admin/openapi/refresh", headers=await admin_headers(http, app))
        paths = (await http.get("/openapi.json")).json()["paths"]
        for path in paths:
            assert "/internal/" not in path
            if path.startswith("/api/v1/"):
                assert path.rsplit("/", 1)[-1] not in {"healthz", "readyz", "metrics", "info"}

    async def test_operations_offer_the_oauth_client_credentials_scheme(
        self, docs_gateway: Any
    ) -> None:
        http, app, _, _ = docs_gateway
        await http.post("/admin/openapi/refresh", headers=await admin_headers(http, app))
        document = (await http.get("/openapi.json")).json()
        scheme = document["components"]["securitySchemes"]["oauth2"]
        assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
        assert scheme["flows"]["authorizationCode"]["authorizationUrl"] == "/oauth/authorize"
        secured = [
            op
            for path, item in document["paths"].items()
            if path.startswith("/api/v1/")
            for m, op in item.items()
            if m in HTTP_METHODS and op.get("security")
        ]
        assert secured
        assert all({"oauth2": []} in op["security"] for op in secured)
        assert all("429" in op["responses"] and "503" in op["responses"] for op in secured)

    async def test_a_service_that_is_down_is_added_on_refresh(self, docs_gateway: Any) -> None:
        http, app, _, router = docs_gateway
        admin = await admin_headers(http, app)
        router.down.add("consent.test")
        app.state.openapi.documents.clear()
        partial = await http.post("/admin/openapi/refresh", headers=admin)
        assert partial.json()["missing"] == ["consent"]
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert not any(p.startswith("/api/v1/consents") for p in paths)
        router.down.clear()
        complete = await http.post("/admin/openapi/refresh", headers=admin)
        assert complete.json()["missing"] == []
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert any(p.startswith("/api/v1/consents") for p in paths)

    @pytest.mark.promise(12)
    async def test_a_service_that_comes_up_after_the_gateway_is_in_the_next_document(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        router = HostRouter(service_apps())
        router.down.add("consent.test")
        urls = {f"{name}_url": f"http://{host}" for name, host in UPSTREAMS.items()}
        app = create_app(await gateway_settings(**urls), upstream_transport=router)
        async with in_process(app) as http:
            before = await http.get("/openapi.json")
            router.down.clear()  # consent is up: every /readyz answers 200 now
            after = await http.get("/openapi.json")
        assert before.headers["cache-control"] == "no-store"
        info = before.json()["info"]
        assert info["x-refex-missing-services"] == ["consent"]
        assert "consent API could not be loaded" in info["description"]
        assert after.status_code == 200
        assert any(p.startswith("/api/v1/consents") for p in after.json()["paths"])
        assert "x-refex-missing-services" not in after.json()["info"]
        assert after.headers["cache-control"] == "no-cache"

    @pytest.mark.promise(12)
    async def test_an_incomplete_document_says_what_is_missing_and_stays_valid(
        self, docs_gateway: Any
    ) -> None:
        http, app, _, router = docs_gateway
        router.down.add("referral.test")
        app.state.openapi.documents.pop("referral", None)
        response = await http.get("/openapi.json")
        document = response.json()
        validate(document)
        assert document["info"]["x-refex-missing-services"] == ["referral"]
        assert not any(p.startswith("/api/v1/referrals") for p in document["paths"])
        upstreams = await http.get("/readyz/upstreams")
        assert upstreams.status_code == 503
        assert upstreams.json()["checks"]["referral"] == "unreachable"
        assert upstreams.json()["openapi_missing"] == ["referral"]
        router.down.clear()
        healed = await http.get("/readyz/upstreams")
        assert healed.status_code == 200
        assert healed.json()["openapi_missing"] == []

    async def test_refresh_needs_the_admin_role(self, docs_gateway: Any) -> None:
        http, _, _, _ = docs_gateway
        assert (await http.post("/admin/openapi/refresh")).status_code == 401


class TestComponentMerge:
    def test_clashing_components_are_renamed_and_references_follow(self) -> None:
        def doc(service_field: str) -> dict[str, Any]:
            return {
                "openapi": "3.1.0",
                "info": {"title": "x", "version": "1"},
                "paths": {
                    "/referrals": {
                        "get": {
                            "operationId": "list",
                            "responses": {
                                "200": {
                                    "description": "ok",
                                    "content": {
                                        "application/json": {
                                            "schema": {"$ref": "#/components/schemas/Page"}
                                        }
                                    },
                                }
                            },
                        }
                    }
                },
                "components": {
                    "schemas": {
                        "Thing": {"type": "object", "properties": {service_field: {}}},
                        "Page": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}},
                        "Shared": {"type": "string"},
                    }
                },
            }

        own = {"openapi": "3.1.0", "info": {"title": "g", "version": "1"}, "paths": {}}
        upstream_a = doc("a")
        upstream_a["paths"] = {"/organisations": upstream_a["paths"].pop("/referrals")}
        merged = merge_documents(
            own, {"directory": upstream_a, "referral": doc("b")}, roles=["admin"]
        )
        schemas = merged["components"]["schemas"]
        assert schemas["Thing"]["properties"] == {"a": {}}
        assert schemas["ReferralThing"]["properties"] == {"b": {}}
        assert schemas["ReferralPage"]["items"]["$ref"] == "#/components/schemas/ReferralThing"
        assert "ReferralShared" not in schemas
        referral_get = merged["paths"]["/api/v1/referrals"]["get"]
        assert referral_get["operationId"] == "referral.list"  # the directory's came first
        ref = referral_get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ReferralPage"
        assert "/api/v1/directory/organisations" in merged["paths"]


ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""")
SCRIPT_URL = re.compile(r"""url:\s*['"]([^'"]+)['"]""")


class TestDocsPagesOffline:
    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    async def test_the_page_and_every_asset_load_from_the_gateway(
        self, docs_gateway: Any, page: str
    ) -> None:
        http, _, _, _ = docs_gateway
        response = await http.get(page)
        assert response.status_code == 200
        html = response.text
        urls = set(ASSET.findall(html)) | set(SCRIPT_URL.findall(html))
        assert "/openapi.json" in urls
        assert len(urls) >= 2
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from outside the gateway"
            asset = await http.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100
        assert "cdn" not in html.lower()
        assert "fonts.googleapis" not in html
