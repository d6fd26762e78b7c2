"""Fixtures of the gateway tests: settings with a key-encryption key, clients, tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from services.gateway import service as registry
from services.gateway.app import create_app
from services.gateway.keys import new_kek_text
from services.gateway.schemas import ClientCreate
from services.gateway.settings import GatewaySettings
from services.stack import free_port
from shared.demo import ADMIN_ORG, HOST_OFFICE_ORG
from tests.conftest import DatabaseFactory

KEK = new_kek_text()
PEPPER = "test-pepper-" + new_kek_text()


def closed_url() -> str:
    """An address where nothing listens (a port freed right away)."""
    return f"http://127.0.0.1:{free_port()}"


SettingsFactory = Callable[..., Awaitable[GatewaySettings]]


@pytest.fixture
def gateway_settings(test_settings: Callable[..., Any]) -> SettingsFactory:
    """Build gateway settings on a fresh database; upstreams default to closed ports."""

    def build_sync(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "key_encryption_key": KEK,
            "client_secret_pepper": PEPPER,
            "directory_url": closed_url(),
            "consent_url": closed_url(),
            "referral_url": closed_url(),
            "upstream_timeout_s": 2.0,
        }
        values.update(overrides)
        settings: GatewaySettings = test_settings(GatewaySettings, **values)
        return settings

    async def build(**overrides: Any) -> GatewaySettings:
        # Migrations run their own event loop, so they run in a thread here.
        return await anyio.to_thread.run_sync(lambda: build_sync(**overrides))

    return build


@pytest.fixture
def sqlite_gateway_settings(database_factory: DatabaseFactory) -> SettingsFactory:
    """Gateway settings on a fresh SQLite database, for behaviour no database shapes
    (routing, headers, documents, rate limits): those tests run once, not per backend."""

    def build_sync(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": database_factory.fresh("gateway", "sqlite"),
            "log_level": "WARNING",
            "key_encryption_key": KEK,
            "client_secret_pepper": PEPPER,
            "directory_url": closed_url(),
            "consent_url": closed_url(),
            "referral_url": closed_url(),
            "upstream_timeout_s": 2.0,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    async def build(**overrides: Any) -> GatewaySettings:
        return await anyio.to_thread.run_sync(lambda: build_sync(**overrides))

    return build


@pytest.fixture
async def gateway(
    gateway_settings: SettingsFactory, in_process: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """A gateway with no upstream running, driven in process."""
    app = create_app(await gateway_settings())
    async with in_process(app) as client:
        yield client, app


async def register(
    app: FastAPI,
    *,
    roles: list[str],
    org: uuid.UUID = HOST_OFFICE_ORG,
    client_id: str | None = None,
    jwks: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Register a client straight in the registry (bootstrap); return id and secret."""
    client_in = ClientCreate.model_validate(
        {"client_id": client_id, "name": "test client", "org_id": org, "roles": roles, "jwks": jwks}
    )
    async with app.state.db.sessionmaker.begin() as session:
        client, secret = await registry.create_client(
            session=session, client_in=client_in, pepper=app.state.settings.secret_pepper()
        )
    return client.client_id, secret


async def get_token(http: httpx.AsyncClient, client_id: str, secret: str, **form: str) -> str:
    """Obtain an access token with HTTP Basic."""
    response = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials", **form}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def admin_headers(http: httpx.AsyncClient, app: FastAPI) -> dict[str, str]:
    """Register an admin client and return its bearer header."""
    client_id, secret = await register(app, roles=["admin"], org=ADMIN_ORG)
    return {"Authorization": f"Bearer {await get_token(http, client_id, secret)}"}
