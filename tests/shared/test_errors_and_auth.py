"""Problem responses for validation, and token verification as every service does it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic import BaseModel, Field

from services.directory.settings import DirectorySettings
from shared.app import build_service_app
from shared.auth import (
    AnyPrincipal,
    Principal,
    StaticJwks,
    TokenVerifier,
    UrlJwks,
    require_roles,
)
from shared.db import SessionDep
from shared.errors import Conflict, Unauthenticated, problem_responses
from shared.testing import TEST_AUDIENCE, TEST_ISSUER, TokenMinter


class Thing(BaseModel):
    name: str = Field(min_length=3)
    count: int


def probe_app(settings: DirectorySettings) -> FastAPI:
    app = build_service_app(title="probe", description="probe", settings=settings)

    @app.post("/things", responses=problem_responses(409, 422))
    async def create_thing(
        thing: Thing, principal: AnyPrincipal, session: SessionDep
    ) -> dict[str, Any]:
        if thing.name == "taken":
            raise Conflict("That name is taken; choose another.")
        return {"org": principal.org_id, "name": thing.name}

    @app.get("/audit")
    async def audit(principal: Principal = Depends(require_roles("auditor"))) -> dict[str, str]:
        return {"client": principal.client_id}

    return app


@pytest.fixture
def app(test_settings: Callable[..., Any]) -> FastAPI:
    return probe_app(test_settings(DirectorySettings))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestValidationProblems:
    async def test_invalid_fields_list_each_error_without_echoing_values(
        self, app: FastAPI, in_process: Any, token_minter: TokenMinter
    ) -> None:
        async with in_process(app) as client:
            response = await client.post(
                "/things",
                json={"name": "xy-secret"[:2], "count": "many"},
                headers=token_minter.headers(roles=["host_office"]),
            )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "name"), ("body", "count")}
        assert "many" not in response.text

    async def test_malformed_json_is_a_400_problem(
        self, app: FastAPI, in_process: Any, token_minter: TokenMinter
    ) -> None:
        async with in_process(app) as client:
            response = await client.post(
                "/things",
                content=b'{"name": "abc", ',
                headers={
                    **token_minter.headers(roles=["host_office"]),
                    "content-type": "application/json",
                },
            )
        assert response.status_code == 400
        assert response.json()["type"] == "urn:refex:problem:malformed-json"

    async def test_service_errors_carry_their_detail(
        self, app: FastAPI, in_process: Any, token_minter: TokenMinter
    ) -> None:
        async with in_process(app) as client:
            response = await client.post(
                "/things",
                json={"name": "taken", "count": 1},
                headers=token_minter.headers(roles=["host_office"]),
            )
        assert response.status_code == 409
        assert response.json()["detail"] == "That name is taken; choose another."

    def test_openapi_documents_problems_not_fastapi_validation_errors(self, app: FastAPI) -> None:
        schema = app.openapi()
        responses = schema["paths"]["/things"]["post"]["responses"]
        assert set(responses) >= {"401", "403", "409", "422"}
        assert "application/problem+json" in responses["422"]["content"]
        assert "HTTPValidationError" not in schema["components"]["schemas"]
        assert "Problem" in schema["components"]["schemas"]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _hs256_with_public_key(minter: TokenMinter) -> str:
    """The classic confusion attack: HMAC keyed with the verifier's public key."""
    public_pem = minter.key.as_pem(private=False)
    now = int(time.time())
    claims = {
        "iss": minter.issuer,
        "aud": minter.audience,
        "sub": "c",
        "org": "o",
        "roles": ["auditor"],
        "jti": "j",
        "exp": now + 60,
    }
    signing_input = f"{_b64({'alg': 'HS256', 'kid': minter.key.kid})}.{_b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


BAD_TOKENS: dict[str, Callable[[TokenMinter], str]] = {
    "expired": lambda m: m.token(roles=["auditor"], exp=int(time.time()) - 120),
    "not yet valid": lambda m: m.token(roles=["auditor"], nbf=int(time.time()) + 600),
    "wrong audience": lambda m: m.token(roles=["auditor"], aud="someone-else"),
    "wrong issuer": lambda m: m.token(roles=["auditor"], iss="https://evil.example"),
    "missing org": lambda m: m.token(roles=["auditor"], org=None),
    "alg none": lambda m: _unsigned(
        {
            "iss": m.issuer,
            "aud": m.audience,
            "sub": "c",
            "org": "o",
            "roles": ["auditor"],
            "jti": "j",
            "exp": int(time.time()) + 60,
        }
    ),
    "hs256 with the public key": _hs256_with_public_key,
    "unknown kid": lambda m: jwt.encode(
        {"alg": "ES256", "kid": "stranger"},
        {
            "iss": m.issuer,
            "aud": m.audience,
            "sub": "c",
            "org": "o",
            "jti": "j",
            "exp": int(time.time()) + 60,
        },
        ECKey.generate_key("P-256"),
        algorithms=["ES256"],
    ),
    "signed by another key with our kid": lambda m: jwt.encode(
        {"alg": "ES256", "kid": m.key.kid},
        {
            "iss": m.issuer,
            "aud": m.audience,
            "sub": "c",
            "org": "o",
            "jti": "j",
            "exp": int(time.time()) + 60,
        },
        ECKey.generate_key("P-256"),
        algorithms=["ES256"],
    ),
    "garbage": lambda m: "not-a-jwt",
    "garbage with dots": lambda m: "a.b.c",
    "huge": lambda m: "x" * 10_000,
}


class TestTokenVerification:
    @pytest.mark.parametrize("case", sorted(BAD_TOKENS))
    async def test_bad_tokens_get_401_with_www_authenticate(
        self, case: str, app: FastAPI, in_process: Any, token_minter: TokenMinter
    ) -> None:
        token = BAD_TOKENS[case](token_minter)
        async with in_process(app) as client:
            response = await client.get("/audit", headers=auth(token))
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]

    @pytest.mark.parametrize("header", ["", "Bearer", "Basic dXNlcjpwYXNz", "Bearer a b"])
    async def test_malformed_authorization_headers_get_401(
        self, header: str, app: FastAPI, in_process: Any
    ) -> None:
        async with in_process(app) as client:
            response = await client.get("/audit", headers={"Authorization": header})
        assert response.status_code == 401

    async def test_token_in_query_string_is_refused(
        self, app: FastAPI, in_process: Any, token_minter: TokenMinter
    ) -> None:
        token = token_minter.token(roles=["auditor"])
        async with in_process(app) as client:
            response = await client.get(
                "/audit", params={"access_token": token}, headers=auth(token)
            )
        assert response.status_code == 401
        assert "URL" in response.json()["detail"]

    async def test_wrong_role_gets_403(
        self, app: FastAPI, in_process: Any, token_minter: TokenMinter
    ) -> None:
        async with in_process(app) as client:
            response = await client.get("/audit", headers=token_minter.headers(roles=["provider"]))
        assert response.status_code == 403
        assert "auditor" in response.json()["detail"]

    async def test_valid_token_yields_the_principal(
        self, app: FastAPI, in_process: Any, token_minter: TokenMinter
    ) -> None:
        async with in_process(app) as client:
            response = await client.get(
                "/audit", headers=token_minter.headers(roles=["auditor"], client="dpo-1")
            )
        assert response.status_code == 200
        assert response.json() == {"client": "dpo-1"}


class TestPersonClaim:
    async def test_a_persons_token_names_them_and_a_clients_token_nobody(
        self, token_minter: TokenMinter
    ) -> None:
        verifier = TokenVerifier(
            StaticJwks(token_minter.jwks()), issuer=TEST_ISSUER, audience=TEST_AUDIENCE
        )
        person = uuid.uuid4()
        signed_in = await verifier.verify(
            token_minter.token(roles=["provider"], client=f"user:{person}", person=str(person))
        )
        assert signed_in.person_id == person and signed_in.client_id == f"user:{person}"
        assert (await verifier.verify(token_minter.token(roles=["provider"]))).person_id is None

    async def test_a_person_claim_that_is_no_user_id_is_refused(
        self, token_minter: TokenMinter
    ) -> None:
        verifier = TokenVerifier(
            StaticJwks(token_minter.jwks()), issuer=TEST_ISSUER, audience=TEST_AUDIENCE
        )
        with pytest.raises(Unauthenticated):
            await verifier.verify(token_minter.token(roles=["provider"], person="alice"))


class JwksServer:
    """A JWKS endpoint whose published keys a test changes; counts the fetches."""

    def __init__(self, *minters: TokenMinter) -> None:
        self.published = list(minters)
        self.fetches = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, json={"keys": [m.jwks()["keys"][0] for m in self.published]})


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def url_verifier(server: JwksServer, clock: Clock, *, ttl_s: float = 60.0) -> TokenVerifier:
    source = UrlJwks(
        "http://gateway/.well-known/jwks.json",
        transport=httpx.MockTransport(server.handle),
        ttl_s=ttl_s,
        clock=clock,
    )
    return TokenVerifier(source, issuer=TEST_ISSUER, audience=TEST_AUDIENCE)


class TestKeyWithdrawal:
    @pytest.mark.promise(6)
    async def test_a_withdrawn_key_stops_verifying_when_the_cached_key_set_expires(self) -> None:
        old, new = TokenMinter(kid="old-key"), TokenMinter(kid="new-key")
        server, clock = JwksServer(old, new), Clock()
        verifier = url_verifier(server, clock, ttl_s=60)
        token = old.token(roles=["auditor"], lifetime_s=3600)
        assert (await verifier.verify(token)).roles == {"auditor"}
        server.published = [new]  # the gateway withdrew the old key
        clock.now += 59
        assert await verifier.verify(token)  # still within the cache lifetime
        clock.now += 2
        with pytest.raises(Unauthenticated, match="withdrawn"):
            await verifier.verify(token)
        assert await verifier.verify(new.token(roles=["auditor"]))

    @pytest.mark.promise(6)
    async def test_a_cached_token_is_checked_against_the_current_key_set(self) -> None:
        old, new = TokenMinter(kid="old-key"), TokenMinter(kid="new-key")
        published = {"keys": [old.jwks()["keys"][0], new.jwks()["keys"][0]]}
        verifier = TokenVerifier(
            StaticJwks(lambda: published), issuer=TEST_ISSUER, audience=TEST_AUDIENCE
        )
        token = old.token(roles=["auditor"], lifetime_s=3600)
        assert await verifier.verify(token)
        published = {"keys": [new.jwks()["keys"][0]]}  # a new document, as the key ring makes
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)

    async def test_a_lifetime_shorter_than_the_refetch_throttle_still_holds(self) -> None:
        old, new = TokenMinter(kid="old-key"), TokenMinter(kid="new-key")
        server, clock = JwksServer(old, new), Clock()
        verifier = url_verifier(server, clock, ttl_s=0.5)
        token = old.token(roles=["auditor"], lifetime_s=3600)
        assert await verifier.verify(token)
        server.published = [new]
        clock.now += 0.6
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)

    async def test_unknown_kids_refetch_at_most_once_a_second(self) -> None:
        known, stranger = TokenMinter(kid="known"), TokenMinter(kid="stranger")
        server, clock = JwksServer(known), Clock()
        verifier = url_verifier(server, clock)
        await verifier.verify(known.token(roles=["auditor"]))
        clock.now += 1.0
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                await verifier.verify(stranger.token(roles=["auditor"]))
        assert server.fetches == 2  # the first load and one early refetch
        clock.now += 1.0
        server.published.append(stranger)  # a rotation on another replica
        assert await verifier.verify(stranger.token(roles=["auditor"]))
        assert server.fetches == 3

    async def test_an_unreachable_gateway_leaves_the_last_keys_in_use(self) -> None:
        minter, clock = TokenMinter(kid="k"), Clock()
        server = JwksServer(minter)
        verifier = url_verifier(server, clock, ttl_s=10)
        await verifier.verify(minter.token(roles=["auditor"]))
        server.handle = lambda request: httpx.Response(503)  # type: ignore[method-assign]
        clock.now += 11
        assert await verifier.verify(minter.token(roles=["auditor"]))

    def test_the_cache_lifetime_is_a_setting_of_at_most_a_minute(self) -> None:
        settings = DirectorySettings(environment="development", jwks_cache_ttl_s=5)
        assert settings.jwks_cache_ttl_s == 5
        with pytest.raises(ValueError, match="60"):
            DirectorySettings(environment="development", jwks_cache_ttl_s=61)
