"""A rotated-out signing key stops working everywhere once its overlap has passed."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.directory.app import create_app as create_directory
from services.directory.settings import DirectorySettings
from services.gateway import keys as gateway_keys
from services.gateway.app import create_app
from services.referral.app import create_app as create_referral
from services.referral.settings import ReferralSettings
from shared.clock import utcnow
from shared.demo import ADMIN_ORG
from tests.conftest import DatabaseFactory
from tests.gateway.conftest import SettingsFactory, get_token, register
from tests.gateway.upstreams import serve_http

JWKS_TTL_S = 0.5
# The GET each service answers for a host office, and only with a token it accepts.
PROBES = {"directory": "/organisations", "consent": "/overrides", "referral": "/referrals"}


@pytest.fixture
def services(database_factory: DatabaseFactory, tmp_path: Path, in_process: Any) -> Any:
    """Start directory, consent and referral trusting the gateway's JWKS at a URL."""

    async def start(gateway_url: str, stack: AsyncExitStack) -> dict[str, httpx.AsyncClient]:
        def common(service: str) -> dict[str, Any]:
            return {
                "environment": "test",
                "log_level": "WARNING",
                "database_url": database_factory.fresh(service, "sqlite"),
                "jwks_url": f"{gateway_url}/.well-known/jwks.json",
                "jwks_cache_ttl_s": JWKS_TTL_S,
            }

        apps = {
            "directory": create_directory(DirectorySettings(**common("directory"))),
            "consent": create_consent(ConsentSettings(**common("consent"))),
            "referral": create_referral(
                ReferralSettings(
                    **common("referral"),
                    run_workers=False,
                    subject_hash_key=SecretStr("test-subject-hash-key-9a4e"),
                    webhook_signing_key_file=tmp_path / "webhook.jwk",
                )
            ),
        }
        return {
            name: await stack.enter_async_context(in_process(app)) for name, app in apps.items()
        }

    return start


async def statuses(clients: dict[str, httpx.AsyncClient], token: str) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {token}"}
    return {
        name: (await clients[name].get(path, headers=headers)).status_code
        for name, path in PROBES.items()
    }


class TestWithdrawnSigningKeys:
    @pytest.mark.promise(6)
    async def test_an_old_token_is_refused_by_every_service_after_the_overlap(
        self,
        sqlite_gateway_settings: SettingsFactory,
        services: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        settings = await sqlite_gateway_settings(access_token_ttl_s=3600, signing_key_overlap_s=60)
        app = create_app(settings)
        async with serve_http(app) as gateway_url, AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=gateway_url))
            clients = await services(gateway_url, stack)
            caseworker = await register(app, roles=["host_office"])
            admin = await register(app, roles=["admin"], org=ADMIN_ORG)
            old_token = await get_token(http, *caseworker)
            old_admin = {"Authorization": f"Bearer {await get_token(http, *admin)}"}
            assert await statuses(clients, old_token) == dict.fromkeys(PROBES, 200)
            assert (await http.get("/admin/clients", headers=old_admin)).status_code == 200

            rotated = await http.post("/admin/signing-keys/rotate", headers=old_admin)
            assert rotated.status_code == 200
            during_overlap = await http.get("/admin/clients", headers=old_admin)
            assert during_overlap.status_code == 200  # the overlap: old tokens still work

            later = utcnow() + timedelta(seconds=61)
            monkeypatch.setattr(gateway_keys, "utcnow", lambda: later)  # the overlap is over
            await asyncio.sleep(JWKS_TTL_S + 0.1)  # and so is every service's cached key set

            published = (await http.get("/.well-known/jwks.json")).json()["keys"]
            assert [key["kid"] for key in published] == [rotated.json()["kid"]]
            refused = await http.get("/admin/clients", headers=old_admin)
            assert refused.status_code == 401
            assert "withdrawn" in refused.json()["detail"]
            assert await statuses(clients, old_token) == dict.fromkeys(PROBES, 401)
            new_token = await get_token(http, *caseworker)
            assert await statuses(clients, new_token) == dict.fromkeys(PROBES, 200)
