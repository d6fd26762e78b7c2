"""The admin API of accounts, and a person's token at the public API: their roles and org hold."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.directory.app import create_app as create_directory
from services.directory.settings import DirectorySettings
from services.gateway.app import create_app
from shared.demo import ADMIN_ORG, HOST_OFFICE_ORG, SECOND_HOST_OFFICE_ORG
from tests.gateway.conftest import SettingsFactory, admin_headers, get_token, register
from tests.gateway.people import Browser, code_of, create_user, enrol_totp, exchange

USER_OPERATIONS = [
    ("POST", "/admin/users"),
    ("GET", "/admin/users"),
    ("GET", "/admin/users/{user_id}"),
    ("POST", "/admin/users/{user_id}/disable"),
    ("POST", "/admin/users/{user_id}/enable"),
    ("POST", "/admin/users/{user_id}/password"),
    ("POST", "/admin/users/{user_id}/totp"),
    ("POST", "/admin/users/{user_id}/sign-out"),
    ("GET", "/admin/users/{user_id}/events"),
]


class LateRouter(httpx.AsyncBaseTransport):
    """Send the gateway's upstream calls to an app started after the gateway (it needs the
    gateway's keys to verify tokens)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.app is None:
            raise httpx.ConnectError("not started", request=request)
        return await httpx.ASGITransport(self.app).handle_async_request(request)


async def person_headers(
    http: httpx.AsyncClient, admin: dict[str, str], *, roles: list[str], org: uuid.UUID
) -> tuple[dict[str, str], str]:
    """Create a person, sign them in (with a second factor for admins); bearer and user id."""
    created = await create_user(http, admin, roles=roles, org=org)
    user_id = created["user"]["user_id"]
    authenticator = await enrol_totp(http, admin, user_id) if "admin" in roles else None
    browser = Browser(http)
    answer = await browser.sign_in(created["user"]["email"])
    if authenticator is not None:
        answer = await browser.submit(totp_code=authenticator.now())
    tokens = await exchange(http, code_of(answer, browser.params["state"]), browser.verifier)
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}, user_id


@pytest.fixture
async def stack(
    gateway_settings: SettingsFactory,
    test_settings: Any,
    in_process: Any,
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """A gateway in front of a real directory that trusts the gateway's signing keys."""
    router = LateRouter()
    settings = await gateway_settings(directory_url="http://directory.test")
    app = create_app(settings, upstream_transport=router)
    async with in_process(app) as http:
        jwks = tmp_path / "gateway-jwks.json"
        jwks.write_bytes(orjson.dumps((await http.get("/.well-known/jwks.json")).json()))
        directory = create_directory(test_settings(DirectorySettings, jwks_file=jwks))
        async with LifespanManager(directory) as manager:
            router.app = manager.app
            yield http, app


def _organisation(org: uuid.UUID) -> dict[str, Any]:
    return {
        "id": str(org),
        "name": {"en": "Return office"},
        "stakeholder_type": "ngo",
        "country": "DE",
        "host_office": True,
    }


class TestAPersonsTokenAtThePublicApi:
    async def test_it_acts_with_the_persons_roles_and_organisation(
        self, stack: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        http, app = stack
        admin = await admin_headers(http, app)
        steward, _ = await person_headers(http, admin, roles=["admin"], org=ADMIN_ORG)
        office, _ = await person_headers(http, admin, roles=["host_office"], org=HOST_OFFICE_ORG)
        organisations = "/api/v1/directory/organisations"
        refused = await http.post(
            organisations, json=_organisation(HOST_OFFICE_ORG), headers=office
        )
        assert refused.status_code == 403
        for org in (HOST_OFFICE_ORG, SECOND_HOST_OFFICE_ORG):
            made = await http.post(organisations, json=_organisation(org), headers=steward)
            assert made.status_code == 201, made.text
        own = await http.get(f"{organisations}/{HOST_OFFICE_ORG}/keys", headers=office)
        foreign = await http.get(f"{organisations}/{SECOND_HOST_OFFICE_ORG}/keys", headers=office)
        assert (own.status_code, foreign.status_code) == (200, 403)


class TestUserInfo:
    async def test_a_person_reads_their_own_account_and_a_client_is_refused(
        self, stack: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        http, app = stack
        admin = await admin_headers(http, app)
        me, my_id = await person_headers(http, admin, roles=["provider"], org=HOST_OFFICE_ORG)
        info = await http.get("/oauth/userinfo", headers=me)
        assert info.status_code == 200
        assert info.json()["sub"] == f"user:{my_id}" and info.json()["name"] == "Test Person"
        assert info.json()["roles"] == ["provider"] and "@office.example" in info.json()["email"]
        assert (await http.get("/oauth/userinfo", headers=admin)).status_code == 403
        assert (await http.get("/oauth/userinfo")).status_code == 401
        await http.post(f"/admin/users/{my_id}/disable", headers=admin)
        assert (await http.get("/oauth/userinfo", headers=me)).status_code == 403


class TestTheAdminApiOfAccounts:
    async def test_only_admins_may_call_it(self, stack: tuple[httpx.AsyncClient, FastAPI]) -> None:
        http, app = stack
        admin = await admin_headers(http, app)
        target = (await create_user(http, admin, roles=["provider"]))["user"]["user_id"]
        client_id, secret = await register(app, roles=["host_office", "auditor"])
        partner = {"Authorization": f"Bearer {await get_token(http, client_id, secret)}"}
        person, _ = await person_headers(http, admin, roles=["coordinator"], org=HOST_OFFICE_ORG)
        for method, template in USER_OPERATIONS:
            path = template.format(user_id=target)
            body = {"password": "a long new password"} if path.endswith("password") else None
            for headers, expected in ((partner, 403), (person, 403), ({}, 401)):
                answer = await http.request(method, path, json=body, headers=headers)
                assert answer.status_code == expected, (method, path, answer.text)
        shown = (await http.get(f"/admin/users/{target}", headers=admin)).json()
        assert shown["enabled"] and not shown["totp_enabled"]
        events = (await http.get(f"/admin/users/{target}/events", headers=admin)).json()
        assert [e["action"] for e in events["items"]] == ["user.created"]

    async def test_a_person_may_sign_themselves_out_everywhere_but_nobody_else(
        self, stack: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        http, app = stack
        admin = await admin_headers(http, app)
        me, my_id = await person_headers(http, admin, roles=["provider"], org=HOST_OFFICE_ORG)
        _, colleague = await person_headers(http, admin, roles=["provider"], org=HOST_OFFICE_ORG)
        refused = await http.post(f"/admin/users/{colleague}/sign-out", headers=me)
        assert refused.status_code == 403
        mine = await http.post(f"/admin/users/{my_id}/sign-out", headers=me)
        assert mine.status_code == 200 and mine.json()["revoked_sessions"] == 1
        events = (await http.get(f"/admin/users/{my_id}/events", headers=admin)).json()["items"]
        assert (events[-1]["action"], events[-1]["actor_person_id"]) == ("user.signed-out", my_id)

    async def test_an_admin_person_is_recorded_as_the_actor(
        self, stack: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        http, app = stack
        admin = await admin_headers(http, app)
        steward, steward_id = await person_headers(http, admin, roles=["admin"], org=ADMIN_ORG)
        target = (await create_user(http, steward, roles=["provider"]))["user"]["user_id"]
        await http.post(f"/admin/users/{target}/disable", headers=steward)
        events = (await http.get(f"/admin/users/{target}/events", headers=admin)).json()["items"]
        assert [(e["action"], e["actor_person_id"]) for e in events] == [
            ("user.created", steward_id),
            ("user.disabled", steward_id),
        ]
        assert events[0]["actor_client_id"] == f"user:{steward_id}"

    async def test_creation_checks_roles_e_mail_and_uniqueness(
        self, stack: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        http, app = stack
        admin = await admin_headers(http, app)
        base = {"org_id": str(HOST_OFFICE_ORG), "display_name": "P", "email": "p@o.example"}
        cases = [
            ({**base, "roles": ["service"]}, 400, "role-not-for-people"),
            ({**base, "roles": ["pilot"]}, 422, "validation-failed"),
            ({**base, "roles": []}, 422, "validation-failed"),
            ({**base, "roles": ["provider"], "email": "no-at-sign"}, 422, "validation-failed"),
            ({**base, "roles": ["provider"], "password": "short"}, 422, "validation-failed"),
        ]
        for body, status, slug in cases:
            answer = await http.post("/admin/users", json=body, headers=admin)
            assert (answer.status_code, answer.json()["type"]) == (
                status,
                f"urn:refex:problem:{slug}",
            ), body
        assert (await http.get("/admin/users", headers=admin)).json()["items"] == []
        made = await http.post("/admin/users", json={**base, "roles": ["provider"]}, headers=admin)
        assert made.status_code == 201 and len(made.json()["password"]) >= 20
        twin = {**base, "roles": ["auditor"], "email": "P@O.EXAMPLE"}
        clash = await http.post("/admin/users", json=twin, headers=admin)
        assert clash.status_code == 409 and clash.json()["type"].endswith("user-exists")

    async def test_lists_page_by_cursor_and_filter_by_organisation(
        self, stack: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        http, app = stack
        admin = await admin_headers(http, app)
        mine = [
            (await create_user(http, admin, roles=["provider"]))["user"]["user_id"]
            for _ in range(3)
        ]
        await create_user(http, admin, roles=["provider"], org=SECOND_HOST_OFFICE_ORG)
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 2, "org_id": str(HOST_OFFICE_ORG)}
        while True:
            page = (await http.get("/admin/users", params=params, headers=admin)).json()
            seen += [item["user_id"] for item in page["items"]]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == sorted(mine)
        missing = await http.get(f"/admin/users/{uuid.uuid4()}", headers=admin)
        assert missing.status_code == 404 and missing.json()["type"].endswith("user-not-found")
        bad = await http.get("/admin/users", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=admin)
        assert bad.status_code == 422
