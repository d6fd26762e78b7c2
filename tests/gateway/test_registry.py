"""The client registry admin API and signing-key rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from pydantic import SecretStr
from sqlalchemy import select, update

from services.gateway.app import create_app
from services.gateway.models import ApiClient, SigningKey
from shared.clock import utcnow
from shared.demo import HEALTH_PROVIDER_ORG, PLATFORM_ORG
from tests.gateway.conftest import SettingsFactory, admin_headers, get_token, register

Gateway = tuple[httpx.AsyncClient, FastAPI]
GRANT = {"grant_type": "client_credentials"}
NEW_CLIENT = {"name": "Lagos clinic EMR", "org_id": str(HEALTH_PROVIDER_ORG), "roles": ["provider"]}


async def stored_clients(app: FastAPI) -> list[tuple[str, bool, str | None]]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.scalars(select(ApiClient).order_by(ApiClient.client_id))
        return [(row.client_id, row.enabled, row.secret_hash) for row in rows]


class TestClientAdministration:
    async def test_an_admin_creates_a_client_whose_secret_is_shown_once_and_works(
        self, gateway: Gateway
    ) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        created = await http.post(
            "/admin/clients", json={**NEW_CLIENT, "client_id": "clinic-emr"}, headers=admin
        )
        assert created.status_code == 201
        body = created.json()
        assert body["client"]["client_id"] == "clinic-emr"
        assert body["client"]["roles"] == ["provider"]
        secret = body["client_secret"]
        read = await http.get("/admin/clients/clinic-emr", headers=admin)
        assert secret not in read.text
        assert "secret_hash" not in read.json()
        async with app.state.db.sessionmaker() as session:
            stored = await session.get(ApiClient, "clinic-emr")
        assert stored is not None and stored.secret_hash is not None
        assert stored.secret_hash.startswith("hmac-sha256$")  # 256 random bits, peppered HMAC
        assert secret not in stored.secret_hash
        assert await get_token(http, "clinic-emr", secret)

    async def test_listing_pages_through_clients_of_an_organisation(self, gateway: Gateway) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        for n in range(3):
            await register(app, roles=["provider"], org=HEALTH_PROVIDER_ORG, client_id=f"p-{n}")
        first = await http.get(
            "/admin/clients",
            params={"org_id": str(HEALTH_PROVIDER_ORG), "limit": 2},
            headers=admin,
        )
        assert [c["client_id"] for c in first.json()["items"]] == ["p-0", "p-1"]
        second = await http.get(
            "/admin/clients",
            params={"org_id": str(HEALTH_PROVIDER_ORG), "cursor": first.json()["next_cursor"]},
            headers=admin,
        )
        assert [c["client_id"] for c in second.json()["items"]] == ["p-2"]
        assert second.json()["next_cursor"] is None

    async def test_a_rotated_secret_replaces_the_old_one_at_once(self, gateway: Gateway) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        client_id, old = await register(app, roles=["provider"])
        rotated = await http.post(f"/admin/clients/{client_id}/secret", headers=admin)
        assert rotated.status_code == 200
        new = rotated.json()["client_secret"]
        refused = await http.post("/oauth/token", data=GRANT, auth=(client_id, old))
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert await get_token(http, client_id, new)

    async def test_non_admins_cannot_touch_the_registry(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["host_office"])
        headers = {"Authorization": f"Bearer {await get_token(http, client_id, secret)}"}
        before = await stored_clients(app)
        created = await http.post("/admin/clients", json=NEW_CLIENT, headers=headers)
        disabled = await http.post(f"/admin/clients/{client_id}/disable", headers=headers)
        assert created.status_code == disabled.status_code == 403
        assert await stored_clients(app) == before

    @pytest.mark.parametrize(
        "change",
        [
            {"roles": []},
            {"roles": ["superuser"]},
            {"org_id": "not-a-uuid"},
            {"client_id": "has spaces"},
            {"roles": ["service"]},
        ],
        ids=["no-roles", "unknown-role", "bad-org", "bad-id", "service-outside-platform"],
    )
    async def test_invalid_clients_are_refused_and_nothing_is_stored(
        self, gateway: Gateway, change: dict[str, Any]
    ) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        before = await stored_clients(app)
        response = await http.post("/admin/clients", json={**NEW_CLIENT, **change}, headers=admin)
        assert response.status_code in (400, 422)
        assert response.headers["content-type"] == "application/problem+json"
        assert await stored_clients(app) == before

    async def test_service_clients_belong_to_the_platform(self, gateway: Gateway) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        client = {**NEW_CLIENT, "org_id": str(PLATFORM_ORG), "roles": ["service"]}
        assert (await http.post("/admin/clients", json=client, headers=admin)).status_code == 201

    async def test_a_taken_client_id_is_a_409(self, gateway: Gateway) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        await register(app, roles=["provider"], client_id="taken-id")
        before = await stored_clients(app)
        response = await http.post(
            "/admin/clients", json={**NEW_CLIENT, "client_id": "taken-id"}, headers=admin
        )
        assert response.status_code == 409
        assert await stored_clients(app) == before

    async def test_unknown_clients_are_404(self, gateway: Gateway) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        for method, path in [
            ("GET", "/admin/clients/nope"),
            ("POST", "/admin/clients/nope/disable"),
            ("POST", "/admin/clients/nope/secret"),
        ]:
            assert (await http.request(method, path, headers=admin)).status_code == 404


class TestClientKeys:
    async def test_a_registered_jwks_enables_private_key_jwt(self, gateway: Gateway) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        client_id, _ = await register(app, roles=["provider"])
        key = ECKey.generate_key("P-256", parameters={"kid": "k-2026", "alg": "ES256"})
        put = await http.put(
            f"/admin/clients/{client_id}/jwks",
            json={"keys": [key.as_dict(private=False)]},
            headers=admin,
        )
        assert put.status_code == 200
        assert put.json()["jwks_kids"] == ["k-2026"]

    async def test_private_key_material_is_refused(self, gateway: Gateway) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        client_id, _ = await register(app, roles=["provider"])
        key = ECKey.generate_key("P-256", parameters={"kid": "k-2026"})
        response = await http.put(
            f"/admin/clients/{client_id}/jwks",
            json={"keys": [key.as_dict(private=True)]},
            headers=admin,
        )
        assert response.status_code == 400
        assert "private key material" in response.json()["detail"]
        async with app.state.db.sessionmaker() as session:
            stored = await session.get(ApiClient, client_id)
        assert stored is not None and stored.jwks is None


class TestSigningKeys:
    async def test_rotation_keeps_the_previous_key_published_and_old_tokens_valid(
        self, gateway: Gateway
    ) -> None:
        http, app = gateway
        admin = await admin_headers(http, app)
        old_kid = app.state.keys.current_kid
        rotated = await http.post("/admin/signing-keys/rotate", headers=admin)
        assert rotated.status_code == 200
        new_kid = rotated.json()["kid"]
        assert new_kid != old_kid
        published = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert published == {old_kid, new_kid}
        assert (await http.get("/admin/clients", headers=admin)).status_code == 200
        client_id, secret = await register(app, roles=["host_office"])
        token = await get_token(http, client_id, secret)
        assert (
            jwt.decode(token, KeySet.import_key_set(app.state.keys.public_jwks())).header["kid"]
            == new_kid
        )
        listed = (await http.get("/admin/signing-keys", headers=admin)).json()
        assert [(k["kid"], k["current"], k["retire_at"] is None) for k in listed] == [
            (new_kid, True, True),
            (old_kid, False, False),
        ]

    async def test_a_replica_accepts_tokens_signed_after_another_replica_rotated(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings()
        one, two = create_app(settings), create_app(settings)
        async with in_process(one) as http_one, in_process(two) as http_two:
            await two.state.keys.load()
            await one.state.keys.rotate()
            headers = await admin_headers(http_one, one)
            assert (await http_two.get("/admin/clients", headers=headers)).status_code == 200

    async def test_a_rotated_out_key_leaves_the_jwks_after_the_overlap(
        self, gateway: Gateway
    ) -> None:
        http, app = gateway
        old_kid = app.state.keys.current_kid
        new_kid = await app.state.keys.rotate()
        async with app.state.db.sessionmaker.begin() as session:
            await session.execute(
                update(SigningKey)
                .where(SigningKey.kid == old_kid)
                .values(retire_at=utcnow() - timedelta(seconds=1))
            )
        await app.state.keys.load()
        published = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert published == {new_kid}

    async def test_private_keys_are_stored_encrypted(self, gateway: Gateway) -> None:
        _, app = gateway
        async with app.state.db.sessionmaker() as session:
            row = (await session.scalars(select(SigningKey))).one()
        public_d = app.state.keys.public_jwks()["keys"][0]
        assert b'"d"' not in row.private_jwk_encrypted
        assert public_d["x"].encode() not in row.private_jwk_encrypted

    async def test_a_restart_with_the_same_kek_signs_with_the_same_key(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings()
        async with in_process(create_app(settings)):
            pass
        first = create_app(settings)
        async with in_process(first):
            kid = first.state.keys.current_kid
        second = create_app(settings)
        async with in_process(second):
            assert second.state.keys.current_kid == kid

    async def test_a_wrong_kek_refuses_to_start(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        from services.gateway.keys import KeyEncryptionKeyError, new_kek_text

        settings = await gateway_settings()
        async with in_process(create_app(settings)):
            pass
        wrong = settings.model_copy(update={"key_encryption_key": SecretStr(new_kek_text())})
        with pytest.raises(KeyEncryptionKeyError):
            async with in_process(create_app(wrong)):
                pass

    async def test_production_without_a_kek_refuses_to_start(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        from services.gateway.keys import KeyEncryptionKeyError

        settings = (await gateway_settings()).model_copy(
            update={"environment": "production", "key_encryption_key": None}
        )
        with pytest.raises(KeyEncryptionKeyError, match="REFEX_GATEWAY_KEY_ENCRYPTION_KEY"):
            async with in_process(create_app(settings)):
                pass
