"""The token endpoint: RFC 6749 §4.4 client credentials, RFC 7523 assertions, §5.2 errors."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import func, select

from services.gateway.app import create_app
from services.gateway.models import UsedAssertion
from shared.demo import HOST_OFFICE_ORG
from shared.ids import new_id
from tests.gateway.conftest import SettingsFactory, get_token, register

Gateway = tuple[httpx.AsyncClient, FastAPI]
GRANT = {"grant_type": "client_credentials"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert response.headers["cache-control"] == "no-store"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


class TestIssuingTokens:
    async def test_basic_auth_gets_a_signed_five_minute_token_with_org_and_roles(
        self, gateway: Gateway
    ) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["host_office"])
        response = await http.post("/oauth/token", data=GRANT, auth=(client_id, secret))
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert body["scope"] == "host_office"
        assert response.headers["cache-control"] == "no-store"
        jwks = (await http.get("/.well-known/jwks.json")).json()
        token = jwt.decode(body["access_token"], KeySet.import_key_set(jwks))
        claims = token.claims
        assert token.header["alg"] == "ES256"
        assert token.header["kid"] in {key["kid"] for key in jwks["keys"]}
        assert claims["iss"] == "http://127.0.0.1:8000"
        assert claims["aud"] == "refex"
        assert claims["sub"] == client_id
        assert claims["org"] == str(HOST_OFFICE_ORG)
        assert claims["roles"] == ["host_office"]
        assert claims["exp"] - claims["iat"] == 300
        assert claims["nbf"] == claims["iat"]
        assert claims["jti"]

    async def test_jwks_publishes_public_keys_only(self, gateway: Gateway) -> None:
        http, _ = gateway
        keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
        assert keys
        assert all("d" not in key and key["alg"] == "ES256" for key in keys)

    async def test_form_secret_works_and_each_token_has_its_own_jti(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider"])
        data = {**GRANT, "client_id": client_id, "client_secret": secret}
        first = await http.post("/oauth/token", data=data)
        second = await http.post("/oauth/token", data=data)
        assert first.status_code == second.status_code == 200
        assert first.json()["access_token"] != second.json()["access_token"]

    async def test_an_empty_scope_as_swagger_ui_sends_it_means_every_role(
        self, gateway: Gateway
    ) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider", "coordinator"])
        response = await http.post(
            "/oauth/token", data={**GRANT, "scope": ""}, auth=(client_id, secret)
        )
        assert response.status_code == 200
        assert response.json()["scope"] == "provider coordinator"

    async def test_scope_narrows_the_roles_in_the_token(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider", "coordinator"])
        token = await get_token(http, client_id, secret, scope="coordinator")
        claims = jwt.decode(token, KeySet.import_key_set(app.state.keys.public_jwks())).claims
        assert claims["roles"] == ["coordinator"]
        assert claims["scope"] == "coordinator"

    async def test_issued_tokens_open_the_gateway_itself(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["admin"])
        token = await get_token(http, client_id, secret)
        listed = await http.get("/admin/clients", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200


class TestTokenRequestRate:
    async def test_a_client_asking_too_often_is_told_to_reuse_its_token(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings(token_rate_limit_burst=2, token_rate_limit_per_s=0.1)
        app = create_app(settings)
        async with in_process(app) as http:
            client_id, secret = await register(app, roles=["provider"])
            statuses = [
                (await http.post("/oauth/token", data=GRANT, auth=(client_id, secret))).status_code
                for _ in range(3)
            ]
            limited = await http.post("/oauth/token", data=GRANT, auth=(client_id, secret))
        assert statuses == [200, 200, 429]
        assert int(limited.headers["retry-after"]) >= 1
        assert "Reuse your token" in limited.json()["detail"]


class TestRequestErrors:
    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("application/json", b'{"grant_type": "client_credentials"}'),
            ("text/plain", b"grant_type=client_credentials"),
            ("application/x-www-form-urlencoded", b"\xff\xfe=\xff"),
        ],
    )
    async def test_a_non_form_body_is_invalid_request_not_422(
        self, gateway: Gateway, content_type: str, body: bytes
    ) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider"])
        response = await http.post(
            "/oauth/token",
            content=body,
            headers={"Content-Type": content_type},
            auth=(client_id, secret),
        )
        assert_oauth_error(response, 400, "invalid_request")

    async def test_missing_grant_type_is_invalid_request(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider"])
        response = await http.post("/oauth/token", data={"scope": ""}, auth=(client_id, secret))
        assert_oauth_error(response, 400, "invalid_request")

    async def test_a_repeated_parameter_is_invalid_request(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider"])
        response = await http.post(
            "/oauth/token",
            content=b"grant_type=client_credentials&grant_type=client_credentials",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(client_id, secret),
        )
        assert_oauth_error(response, 400, "invalid_request")

    async def test_two_authentication_methods_at_once_are_invalid_request(
        self, gateway: Gateway
    ) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider"])
        response = await http.post(
            "/oauth/token",
            data={**GRANT, "client_id": client_id, "client_secret": secret},
            auth=(client_id, secret),
        )
        assert_oauth_error(response, 400, "invalid_request")

    async def test_a_secret_without_client_id_is_invalid_request(self, gateway: Gateway) -> None:
        http, _ = gateway
        response = await http.post("/oauth/token", data={**GRANT, "client_secret": "x" * 20})
        assert_oauth_error(response, 400, "invalid_request")

    async def test_malformed_basic_credentials_are_invalid_request(self, gateway: Gateway) -> None:
        http, _ = gateway
        response = await http.post(
            "/oauth/token", data=GRANT, headers={"Authorization": "Basic not*base64"}
        )
        assert_oauth_error(response, 400, "invalid_request")

    async def test_a_wrong_method_is_a_405_problem(self, gateway: Gateway) -> None:
        http, _ = gateway
        response = await http.delete("/oauth/token")
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"

    async def test_an_unknown_grant_type_is_unsupported(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider"])
        response = await http.post(
            "/oauth/token", data={"grant_type": "password"}, auth=(client_id, secret)
        )
        assert_oauth_error(response, 400, "unsupported_grant_type")

    @pytest.mark.parametrize("scope", ["admin", "provider admin", "provider  coordinator", 'a"b'])
    async def test_scope_beyond_the_clients_roles_is_invalid_scope(
        self, gateway: Gateway, scope: str
    ) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider", "coordinator"])
        response = await http.post(
            "/oauth/token", data={**GRANT, "scope": scope}, auth=(client_id, secret)
        )
        assert_oauth_error(response, 400, "invalid_scope")


class TestClientAuthenticationErrors:
    async def test_no_credentials_is_invalid_client(self, gateway: Gateway) -> None:
        http, _ = gateway
        assert_oauth_error(await http.post("/oauth/token", data=GRANT), 401, "invalid_client")

    async def test_wrong_secret_and_unknown_client_look_the_same(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, _ = await register(app, roles=["provider"])
        wrong = await http.post("/oauth/token", data=GRANT, auth=(client_id, "wrong-secret"))
        unknown = await http.post("/oauth/token", data=GRANT, auth=("nobody", "wrong-secret"))
        assert_oauth_error(wrong, 401, "invalid_client")
        assert_oauth_error(unknown, 401, "invalid_client")
        assert wrong.json() == unknown.json()

    async def test_a_bearer_token_is_not_client_authentication(self, gateway: Gateway) -> None:
        http, _ = gateway
        response = await http.post(
            "/oauth/token", data=GRANT, headers={"Authorization": "Bearer abc.def.ghi"}
        )
        assert_oauth_error(response, 401, "invalid_client")

    async def test_a_disabled_client_is_unauthorized(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, secret = await register(app, roles=["provider"])
        admin_id, admin_secret = await register(app, roles=["admin"])
        admin = {"Authorization": f"Bearer {await get_token(http, admin_id, admin_secret)}"}
        disabled = await http.post(f"/admin/clients/{client_id}/disable", headers=admin)
        assert disabled.status_code == 200
        assert disabled.json()["enabled"] is False
        refused = await http.post("/oauth/token", data=GRANT, auth=(client_id, secret))
        assert_oauth_error(refused, 400, "unauthorized_client")
        await http.post(f"/admin/clients/{client_id}/enable", headers=admin)
        assert (await http.post("/oauth/token", data=GRANT, auth=(client_id, secret))).is_success


def partner_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "partner-1", "alg": "ES256"})


def assertion(key: ECKey, client_id: str, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": "http://127.0.0.1:8000/oauth/token",
        "jti": new_id().hex,
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def assertion_form(signed: str) -> dict[str, str]:
    return {**GRANT, "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


class TestPrivateKeyJwt:
    async def register_partner(self, app: FastAPI) -> tuple[str, ECKey]:
        key = partner_key()
        jwks = {"keys": [key.as_dict(private=False)]}
        client_id, _ = await register(app, roles=["provider"], jwks=jwks)
        return client_id, key

    async def test_a_signed_assertion_gets_a_token(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, key = await self.register_partner(app)
        response = await http.post("/oauth/token", data=assertion_form(assertion(key, client_id)))
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "provider"

    async def test_a_replayed_assertion_is_refused(self, gateway: Gateway, backend: str) -> None:
        http, app = gateway
        client_id, key = await self.register_partner(app)
        form = assertion_form(assertion(key, client_id))
        assert (await http.post("/oauth/token", data=form)).status_code == 200
        replayed = await http.post("/oauth/token", data=form)
        assert_oauth_error(replayed, 401, "invalid_client")
        assert "already used" in replayed.json()["error_description"]
        async with app.state.db.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(UsedAssertion))
        assert count == 1

    @pytest.mark.parametrize(
        "overrides",
        [
            {"aud": "https://elsewhere.example/token"},
            {"exp": -120},
            {"exp": 3600},
            {"jti": None},
            {"iss": "someone-else"},
            {"nbf": 600},
        ],
        ids=["wrong-aud", "expired", "too-long-lived", "no-jti", "iss-not-sub", "not-yet-valid"],
    )
    async def test_bad_assertion_claims_are_invalid_client(
        self, gateway: Gateway, overrides: dict[str, Any]
    ) -> None:
        http, app = gateway
        client_id, key = await self.register_partner(app)
        # Times are offsets from now, taken when the test runs: the suite may run long after
        # the parameters were collected.
        claims = {
            name: int(time.time()) + value if name in ("exp", "nbf") else value
            for name, value in overrides.items()
        }
        signed = assertion(key, client_id, **claims)
        assert_oauth_error(
            await http.post("/oauth/token", data=assertion_form(signed)), 401, "invalid_client"
        )

    async def test_an_assertion_signed_by_another_key_is_invalid_client(
        self, gateway: Gateway
    ) -> None:
        http, app = gateway
        client_id, _ = await self.register_partner(app)
        signed = assertion(partner_key(), client_id)
        assert_oauth_error(
            await http.post("/oauth/token", data=assertion_form(signed)), 401, "invalid_client"
        )

    async def test_a_client_without_keys_cannot_use_assertions(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, _ = await register(app, roles=["provider"])
        signed = assertion(partner_key(), client_id)
        assert_oauth_error(
            await http.post("/oauth/token", data=assertion_form(signed)), 401, "invalid_client"
        )

    async def test_a_wrong_assertion_type_is_invalid_request(self, gateway: Gateway) -> None:
        http, app = gateway
        client_id, key = await self.register_partner(app)
        form = {**assertion_form(assertion(key, client_id)), "client_assertion_type": "jwt"}
        assert_oauth_error(await http.post("/oauth/token", data=form), 400, "invalid_request")
