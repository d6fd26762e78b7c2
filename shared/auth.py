"""Who is calling: ES256 access tokens verified against the gateway's JWKS."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import httpx
import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from shared.errors import Forbidden, Unauthenticated, UpstreamUnavailable
from shared.i18n import N_, Message
from shared.vocabulary import Role

ALLOWED_TOKEN_ALGORITHMS = ("ES256",)
MAX_TOKEN_BYTES = 8192
JWKS_CACHE_TTL_S = 60.0
JWKS_MIN_REFETCH_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: its client, organisation, roles and scopes, and the person signed
    in when the token was issued to one (else None: a partner system's own token)."""

    client_id: str
    org_id: str
    roles: frozenset[str]
    scopes: frozenset[str]
    token_id: str
    expires_at: int
    person_id: uuid.UUID | None = None

    def has_any_role(self, *roles: Role) -> bool:
        """Return True when the caller holds at least one of `roles`."""
        return not self.roles.isdisjoint(roles)


class JwksSource(Protocol):
    """Where verification keys come from."""

    async def key_set(self, *, refresh: bool) -> KeySet:
        """Return the current keys, fetching anew when `refresh` is set."""
        ...


class StaticJwks:
    """Keys given in memory (tests, the gateway verifying its own tokens)."""

    def __init__(self, jwks: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        self._jwks = jwks
        self._imported: tuple[dict[str, Any], KeySet] | None = None

    async def key_set(self, *, refresh: bool) -> KeySet:
        jwks = self._jwks() if callable(self._jwks) else self._jwks
        # Importing keys costs more than verifying a cached token; redo it only when the
        # source hands out a different document.
        if self._imported is None or self._imported[0] is not jwks:
            self._imported = (jwks, KeySet.import_key_set(jwks))  # type: ignore[arg-type]
        return self._imported[1]


class FileJwks:
    """Keys read from a JSON file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._loaded: tuple[tuple[int, int], KeySet] | None = None

    async def key_set(self, *, refresh: bool) -> KeySet:
        stat = self._path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        if self._loaded is None or self._loaded[0] != version:
            keys = KeySet.import_key_set(orjson.loads(self._path.read_bytes()))
            self._loaded = (version, keys)
        return self._loaded[1]


class UrlJwks:
    """Keys fetched from a JWKS URL and kept for at most `ttl_s`, so a key the gateway stopped
    publishing stops verifying within that time; an unknown kid refetches early, at most once
    per `min_refetch_interval_s`. While the gateway is unreachable the last keys stay in use."""

    def __init__(
        self,
        url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ttl_s: float = JWKS_CACHE_TTL_S,
        min_refetch_interval_s: float = JWKS_MIN_REFETCH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._transport = transport
        self._ttl_s = ttl_s
        # Never throttle below the lifetime itself, or a short lifetime would not hold.
        self._min_interval_s = min(min_refetch_interval_s, ttl_s)
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._attempted_at = 0.0
        self._lock = asyncio.Lock()

    async def key_set(self, *, refresh: bool) -> KeySet:
        if self._keys is not None and not refresh and not self._expired():
            return self._keys
        async with self._lock:
            if self._keys is None or self._due(refresh=refresh):
                self._attempted_at = self._clock()
                self._keys = await self._fetch()
            return self._keys

    def _expired(self) -> bool:
        return self._clock() - self._fetched_at >= self._ttl_s

    def _due(self, *, refresh: bool) -> bool:
        may_retry = self._clock() - self._attempted_at >= self._min_interval_s
        return may_retry and (refresh or self._expired())

    async def _fetch(self) -> KeySet:
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=5.0, trust_env=False
            ) as client:
                response = await client.get(self._url)
                response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError):
            if self._keys is not None:
                return self._keys
            raise UpstreamUnavailable(
                N_("The token-signing keys cannot be fetched from the gateway. Try again shortly.")
            ) from None
        self._fetched_at = self._clock()
        return keys


def _token_header(token: str) -> dict[str, Any]:
    try:
        segment = token.split(".")[0]
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise Unauthenticated(N_("The access token is not a well-formed JWT.")) from None
    if not isinstance(header, dict):
        raise Unauthenticated(N_("The access token is not a well-formed JWT."))
    return header


class TokenVerifier:
    """Verify access tokens and turn their claims into a Principal; verified tokens are cached."""

    def __init__(
        self,
        source: JwksSource,
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 30,
        cache_size: int = 10_000,
    ) -> None:
        self._source = source
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s
        self._cache: OrderedDict[str, tuple[Principal, str]] = OrderedDict()
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        """Return the token's principal or raise Unauthenticated saying what is wrong."""
        cached = self._cache.get(token)
        if cached is not None and await self._still_valid(*cached):
            return cached[0]
        self._cache.pop(token, None)
        principal, kid = await self._verify_uncached(token)
        self._cache[token] = (principal, kid)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _still_valid(self, principal: Principal, kid: str) -> bool:
        """A cached token holds while unexpired and its key is still in the current key set."""
        if principal.expires_at <= time.time():
            return False
        keys = await self._source.key_set(refresh=False)
        return any(key.kid == kid for key in keys.keys)

    async def _verify_uncached(self, token: str) -> tuple[Principal, str]:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated(N_("The access token is too large to be one of ours."))
        header = _token_header(token)
        if header.get("alg") not in ALLOWED_TOKEN_ALGORITHMS:
            raise Unauthenticated(N_("The access token must be signed with ES256."))
        kid = str(header.get("kid", ""))
        keys = await self._key_set_with(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALLOWED_TOKEN_ALGORITHMS))
        except JoseError:
            raise Unauthenticated(N_("The access token's signature is not valid.")) from None
        return self._principal(decoded.claims), kid

    async def _key_set_with(self, kid: str) -> KeySet:
        if not kid:
            raise Unauthenticated(N_("The access token names no signing key (kid)."))
        keys = await self._source.key_set(refresh=False)
        if not any(key.kid == kid for key in keys.keys):
            keys = await self._source.key_set(refresh=True)
        if not any(key.kid == kid for key in keys.keys):
            raise Unauthenticated(
                N_(
                    "The access token was signed with a key that is unknown or withdrawn; "
                    "get a new token at /oauth/token."
                )
            )
        return keys

    def _principal(self, claims: dict[str, Any]) -> Principal:
        registry = jwt.JWTClaimsRegistry(
            leeway=self._leeway_s,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._audience},
            exp={"essential": True},
            sub={"essential": True},
            org={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise Unauthenticated(_claim_problem(error)) from None
        return Principal(
            client_id=str(claims["sub"]),
            org_id=str(claims["org"]),
            roles=frozenset(_as_list(claims.get("roles"))),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            person_id=_person(claims.get("person")),
        )


def _person(value: Any) -> uuid.UUID | None:
    """Read the `person` claim of a token issued to someone signed in at the gateway."""
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Unauthenticated(
            N_("The access token's person claim is not a user id; get a new token.")
        ) from None


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _claim_problem(error: JoseError) -> str:
    name = type(error).__name__
    if name == "ExpiredTokenError":
        return "The access token has expired; get a new one at /oauth/token."
    message = str(getattr(error, "description", "") or error)
    if "nbf" in message or "not valid yet" in message.lower():
        return "The access token is not valid yet; check your clock."
    return f"The access token's claims are not acceptable ({message}); get a new token."


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access token from POST /oauth/token (OAuth 2.0 client credentials).",
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Verify the bearer token of this request."""
    if "access_token" in request.query_params:
        raise Unauthenticated(
            N_(
                "Tokens in the URL are refused because URLs get logged; "
                "send it in the Authorization header."
            ),
            error="invalid_request",
        )
    if credentials is None:
        raise Unauthenticated(error="invalid_request")
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Build a dependency that admits callers holding any of `roles`.

    Call it only in a service's `dependencies.py`, as an `Annotated` alias the routes name.
    """

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.has_any_role(*roles):
            raise Forbidden(
                Message("This operation needs one of the roles: {roles}.", roles=", ".join(roles))
            )
        return principal

    return dependency


AnyPrincipal = Annotated[Principal, Depends(current_principal)]
