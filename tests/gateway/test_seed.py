"""The demo seed: one client per role, written to var/demo/, idempotent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from services.gateway.app import create_app
from services.gateway.seed import seed_demo
from shared.demo import (
    DEMO_CLIENTS_FILE,
    DEMO_ROLE_ORGS,
    DEMO_USER_PASSWORD,
    DEMO_USERS,
    SECOND_HOST_OFFICE_ORG,
    SERVICE_CLIENTS_FILE,
)
from tests.gateway.conftest import SettingsFactory
from tests.gateway.people import Browser, tokens_for


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


class TestDemoSeed:
    async def test_every_role_gets_a_working_client_in_its_demo_organisation(
        self, gateway_settings: SettingsFactory, in_process: object, in_tmp: Path
    ) -> None:
        settings = await gateway_settings()
        await seed_demo(settings)
        clients = json.loads(DEMO_CLIENTS_FILE.read_text())
        services = json.loads(SERVICE_CLIENTS_FILE.read_text())
        assert set(clients) == {*DEMO_ROLE_ORGS, "host_office_2"}
        assert set(services) == {"referral", "consent"}
        assert clients["host_office_2"]["org_id"] == str(SECOND_HOST_OFFICE_ORG)
        app = create_app(settings)
        async with in_process(app) as http:  # type: ignore[operator]
            keys = KeySet.import_key_set((await http.get("/.well-known/jwks.json")).json())
            for role, creds in clients.items():
                response = await http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(creds["client_id"], creds["client_secret"]),
                )
                claims = jwt.decode(response.json()["access_token"], keys).claims
                assert claims["org"] == creds["org_id"]
                assert claims["roles"] == [role.removesuffix("_2")]
            for creds in services.values():
                response = await http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(creds["client_id"], creds["client_secret"]),
                )
                assert response.json()["scope"] == "service"

    async def test_rerunning_keeps_secrets_that_still_verify_and_rotates_others(
        self, gateway_settings: SettingsFactory, in_tmp: Path
    ) -> None:
        settings = await gateway_settings()
        await seed_demo(settings)
        first = json.loads(DEMO_CLIENTS_FILE.read_text())
        first["auditor"]["client_secret"] = "lost-secret"
        DEMO_CLIENTS_FILE.write_text(json.dumps(first))
        await seed_demo(settings)
        second = json.loads(DEMO_CLIENTS_FILE.read_text())
        assert second["host_office"] == first["host_office"]
        assert second["auditor"]["client_id"] == first["auditor"]["client_id"]
        assert second["auditor"]["client_secret"] != "lost-secret"
        assert oct(DEMO_CLIENTS_FILE.stat().st_mode & 0o777) == "0o600"

    @pytest.mark.promise(11)
    async def test_reseeding_repairs_disabled_and_rotated_demo_clients(
        self, gateway_settings: SettingsFactory, in_process: object, in_tmp: Path
    ) -> None:
        settings = await gateway_settings()
        await seed_demo(settings)
        clients = json.loads(DEMO_CLIENTS_FILE.read_text())
        async with in_process(create_app(settings)) as http:  # type: ignore[operator]
            admin = {"Authorization": f"Bearer {await _token(http, clients['admin'])}"}
            for role in ("provider", "admin"):
                client_id = clients[role]["client_id"]
                disabled = await http.post(f"/admin/clients/{client_id}/disable", headers=admin)
                assert disabled.status_code == 200
            rotated = await http.post(
                f"/admin/clients/{clients['auditor']['client_id']}/secret", headers=admin
            )
            assert rotated.status_code == 200
            assert (await _token_response(http, clients["provider"])).status_code != 200
            assert (await _token_response(http, clients["auditor"])).status_code != 200
        await seed_demo(settings)
        printed = json.loads(DEMO_CLIENTS_FILE.read_text())
        async with in_process(create_app(settings)) as http:  # type: ignore[operator]
            for creds in printed.values():
                assert await _token(http, creds)
            listed = await http.get(
                "/admin/clients",
                params={"limit": 50},
                headers={"Authorization": f"Bearer {await _token(http, printed['admin'])}"},
            )
            assert all(client["enabled"] for client in listed.json()["items"])
        assert printed["host_office"] == clients["host_office"]


async def _token_response(http: Any, creds: dict[str, str]) -> Any:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
    )


async def _token(http: Any, creds: dict[str, str]) -> str:
    response = await _token_response(http, creds)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class TestDemoPeople:
    async def test_each_role_has_a_person_who_signs_in_even_after_an_admin_changed_them(
        self, gateway_settings: SettingsFactory, in_process: Any, in_tmp: Path
    ) -> None:
        # Development: the demo admin signs in without a second factor, as with `make run`.
        settings = await gateway_settings(environment="development", signin_max_failures=2)
        await seed_demo(settings)
        clients = json.loads(DEMO_CLIENTS_FILE.read_text())
        async with in_process(create_app(settings)) as http:  # type: ignore[operator]
            keys = KeySet.import_key_set((await http.get("/.well-known/jwks.json")).json())
            for role, (email, org) in DEMO_USERS.items():
                body = await tokens_for(http, email, DEMO_USER_PASSWORD)
                claims = jwt.decode(body["access_token"], keys).claims
                assert (claims["roles"], claims["org"]) == ([role], str(org))
            admin = {"Authorization": f"Bearer {await _token(http, clients['admin'])}"}
            listed = (await http.get("/admin/users", headers=admin)).json()["items"]
            ids = {user["email"]: user["user_id"] for user in listed}
            provider, auditor, office, coordinator = (
                ids[DEMO_USERS[role][0]]
                for role in ("provider", "auditor", "host_office", "coordinator")
            )
            await http.post(f"/admin/users/{provider}/disable", headers=admin)
            await http.post(
                f"/admin/users/{auditor}/password", json={"password": "x" * 20}, headers=admin
            )
            await http.post(f"/admin/users/{office}/totp", headers=admin)
            for _ in range(2):
                await Browser(http).sign_in(DEMO_USERS["coordinator"][0], "wrong password!")
            assert (await http.get(f"/admin/users/{coordinator}", headers=admin)).json()[
                "locked_until"
            ]
            for role in ("provider", "auditor", "host_office", "coordinator"):
                refused = await Browser(http).sign_in(DEMO_USERS[role][0], DEMO_USER_PASSWORD)
                assert refused.status_code == 200, role
        await seed_demo(settings)
        async with in_process(create_app(settings)) as http:  # type: ignore[operator]
            for email, _ in DEMO_USERS.values():
                assert await tokens_for(http, email, DEMO_USER_PASSWORD)
