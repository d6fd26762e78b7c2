"""Test helpers: mint access tokens from a test key, as the gateway would."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from joserfc import jwt
from joserfc.jwk import ECKey

from shared.ids import new_id

TEST_ISSUER = "http://127.0.0.1:8000"
TEST_AUDIENCE = "refex"


class TokenMinter:
    """Signs ES256 access tokens with a throwaway key and publishes its JWKS."""

    def __init__(
        self,
        *,
        issuer: str = TEST_ISSUER,
        audience: str = TEST_AUDIENCE,
        kid: str = "test-signing-key",
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key = ECKey.generate_key(
            "P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"}
        )

    def jwks(self) -> dict[str, Any]:
        """Return the public JWKS that verifies tokens from this minter."""
        return {"keys": [self.key.as_dict(private=False)]}

    def write_jwks(self, path: Path) -> Path:
        """Write the public JWKS to `path` (for REFEX_JWKS_FILE) and return it."""
        path.write_bytes(orjson.dumps(self.jwks()))
        return path

    def token(
        self,
        *,
        roles: list[str],
        org: str = "org-test",
        client: str = "client-test",
        lifetime_s: int = 300,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Mint a token; `claims` override or add claims (pass None to drop one)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client,
            "org": org,
            "roles": roles,
            "scope": "",
            "jti": new_id().hex,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        protected = {"alg": "ES256", "kid": self.key.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(protected, body, self.key, algorithms=["ES256"])

    def headers(self, *, roles: list[str], org: str = "org-test", **claims: Any) -> dict[str, str]:
        """Return an Authorization header for a freshly minted token."""
        return {"Authorization": f"Bearer {self.token(roles=roles, org=org, **claims)}"}
