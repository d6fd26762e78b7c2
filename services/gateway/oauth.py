"""OAuth 2.0 client credentials (RFC 6749 §4.4) with secret or private_key_jwt (RFC 7523)."""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository
from services.gateway.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from services.gateway.hashing import verify_secret
from services.gateway.keys import KeyRing
from services.gateway.models import ApiClient
from services.gateway.settings import GatewaySettings
from shared.clock import utcnow
from shared.i18n import N_, Message
from shared.ids import new_id

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")
MAX_ASSERTION_BYTES = 8192
MAX_CLIENT_ID_CHARS = 64  # the length of api_client.client_id
MAX_SECRET_CHARS = 512
MAX_FORM_BYTES = 16 * 1024
LEEWAY_S = 30

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How the client tried to authenticate, before checking it."""

    method: AuthMethod
    client_id: str
    secret: str = ""
    assertion: str = ""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token and what it grants."""

    access_token: str
    expires_in: int
    scope: str


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """Parse a form-encoded body, refusing other media types and repeated parameters."""
    if content_type.split(";")[0].strip().lower() != FORM_MEDIA_TYPE:
        raise InvalidRequest(
            N_(
                "Send the parameters form-encoded "
                "(Content-Type: application/x-www-form-urlencoded)."
            )
        )
    if len(body) > MAX_FORM_BYTES:
        raise InvalidRequest(
            Message(
                "The token request is larger than {max_form_bytes} bytes; send only the "
                "parameters this endpoint takes.",
                max_form_bytes=MAX_FORM_BYTES,
            )
        )
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest(N_("The form body is not valid UTF-8 form encoding.")) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(
                Message("The parameter '{name}' is repeated; send it once.", name=name)
            )
        if value:  # RFC 6749 §3.1: a parameter without a value counts as omitted
            form[name] = value
    return form


def read_client_auth(form: dict[str, str], authorization: str | None) -> ClientAuth:
    """Find the single client authentication method this request uses."""
    candidates = [
        auth
        for auth in (_basic(form, authorization), _posted_secret(form), _assertion(form))
        if auth is not None
    ]
    if len(candidates) > 1:
        raise InvalidRequest(
            N_(
                "Use exactly one client authentication method: HTTP Basic, client_secret in the "
                "form, or a client_assertion."
            )
        )
    if not candidates:
        raise InvalidClient(
            N_(
                "No client authentication: send your client id and secret with HTTP Basic, "
                "or a signed client_assertion."
            )
        )
    return _checked_lengths(candidates[0])


def _checked_lengths(auth: ClientAuth) -> ClientAuth:
    if len(auth.client_id) > MAX_CLIENT_ID_CHARS:
        raise InvalidRequest(
            Message(
                "The client_id is longer than {max_client_id_chars} characters, so no "
                "client has it; check the client id you were given.",
                max_client_id_chars=MAX_CLIENT_ID_CHARS,
            )
        )
    if len(auth.secret) > MAX_SECRET_CHARS:
        raise InvalidRequest(
            Message(
                "The client secret is longer than {max_secret_chars} characters, so it "
                "cannot be ours; check the secret you were given.",
                max_secret_chars=MAX_SECRET_CHARS,
            )
        )
    return auth


def _basic(form: dict[str, str], authorization: str | None) -> ClientAuth | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient(N_("Authenticate to the token endpoint with HTTP Basic, not a token."))
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(N_("The Basic credentials are not valid base64.")) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidRequest(N_("The Basic credentials must be 'client_id:client_secret'."))
    # RFC 6749 §2.3.1: both parts are form-encoded before base64.
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if form.get("client_id", client_id) != client_id:
        raise InvalidRequest(N_("The client_id in the form differs from the one in HTTP Basic."))
    return ClientAuth("client_secret_basic", client_id, secret=secret)


def _posted_secret(form: dict[str, str]) -> ClientAuth | None:
    if "client_secret" not in form:
        return None
    if "client_id" not in form:
        raise InvalidRequest(N_("client_secret was sent without client_id."))
    return ClientAuth("client_secret_post", form["client_id"], secret=form["client_secret"])


def _assertion(form: dict[str, str]) -> ClientAuth | None:
    if "client_assertion" not in form and "client_assertion_type" not in form:
        return None
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise InvalidRequest(
            Message(
                "client_assertion_type must be '{assertion_type}'.", assertion_type=ASSERTION_TYPE
            )
        )
    assertion = form.get("client_assertion", "")
    if not assertion:
        raise InvalidRequest(N_("client_assertion is missing."))
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise InvalidClient(N_("The client assertion is too large."))
    claims = _unverified_claims(assertion)
    client_id = str(claims.get("sub") or "")
    if not client_id or claims.get("iss") != client_id:
        raise InvalidClient(N_("The client assertion's iss and sub must both be your client id."))
    if form.get("client_id", client_id) != client_id:
        raise InvalidRequest(N_("The client_id in the form differs from the assertion's subject."))
    return ClientAuth("private_key_jwt", client_id, assertion=assertion)


def _unverified_claims(assertion: str) -> dict[str, Any]:
    parts = assertion.split(".")
    try:
        if len(parts) != 3:
            raise ValueError
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = orjson.loads(payload)
    except (ValueError, binascii.Error):
        raise InvalidClient(N_("The client assertion is not a well-formed JWT.")) from None
    if not isinstance(claims, dict):
        raise InvalidClient(N_("The client assertion is not a well-formed JWT."))
    return claims


async def authenticate(
    *, session: AsyncSession, auth: ClientAuth, settings: GatewaySettings
) -> ApiClient:
    """Return the enabled client these credentials prove, or raise the RFC error."""
    client = await repository.get_client(session=session, client_id=auth.client_id)
    if auth.method == "private_key_jwt":
        await _check_assertion(session=session, client=client, auth=auth, settings=settings)
    elif not await verify_secret(
        client.secret_hash if client else None, auth.secret, pepper=settings.secret_pepper()
    ):
        raise InvalidClient(
            N_("Unknown client or wrong secret. Check both, or ask for a new secret.")
        )
    assert client is not None
    if not client.enabled:
        raise UnauthorizedClient(
            N_("This client is disabled and may not obtain tokens; ask an administrator.")
        )
    return client


def assertion_audiences(settings: GatewaySettings) -> set[str]:
    """Return the `aud` values a client assertion may name (the token endpoint, the issuer)."""
    issuer = settings.token_issuer.rstrip("/")
    return {settings.token_url, issuer, f"{issuer}/oauth/token"}


async def _check_assertion(
    *, session: AsyncSession, client: ApiClient | None, auth: ClientAuth, settings: GatewaySettings
) -> None:
    if client is None or not client.jwks:
        raise InvalidClient(
            N_("No public key is registered for this client; register a JWKS first.")
        )
    claims = _verified_claims(auth.assertion, client.jwks)
    _check_assertion_claims(claims, settings)
    expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    fresh = await repository.record_assertion(
        session=session,
        client_id=client.client_id,
        jti=str(claims["jti"])[:200],
        expires_at=expires_at,
        now=utcnow(),
    )
    if not fresh:
        raise InvalidClient(N_("This client assertion was already used; sign a new one (new jti)."))


def _verified_claims(assertion: str, jwks: dict[str, Any]) -> dict[str, Any]:
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        token = jwt.decode(assertion, keys, algorithms=ASSERTION_ALGORITHMS)
    except (JoseError, ValueError):
        raise InvalidClient(
            N_("The client assertion's signature does not verify with your registered keys.")
        ) from None
    return token.claims


def _check_assertion_claims(claims: dict[str, Any], settings: GatewaySettings) -> None:
    now = time.time()
    audience = claims.get("aud")
    audiences = set(audience) if isinstance(audience, list) else {audience}
    if not audiences & assertion_audiences(settings):
        raise InvalidClient(
            Message("The client assertion's aud must be {token_url}.", token_url=settings.token_url)
        )
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidClient(N_("The client assertion needs a unique jti."))
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + LEEWAY_S < now:
        raise InvalidClient(N_("The client assertion has expired (or has no exp); sign a new one."))
    if exp - now > settings.assertion_max_lifetime_s + LEEWAY_S:
        raise InvalidClient(
            Message(
                "The client assertion lives too long; exp must be within "
                "{assertion_max_lifetime_s} s.",
                assertion_max_lifetime_s=settings.assertion_max_lifetime_s,
            )
        )
    for claim in ("nbf", "iat"):
        value = claims.get(claim)
        if isinstance(value, int | float) and value - LEEWAY_S > now:
            raise InvalidClient(N_("The client assertion is not valid yet; check your clock."))


def check_grant_type(form: dict[str, str]) -> None:
    """Accept only the client_credentials grant."""
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest(N_("grant_type is missing; send grant_type=client_credentials."))
    if grant_type != GRANT_TYPE:
        raise UnsupportedGrantType(N_("Only grant_type=client_credentials is supported."))


def granted_roles(requested: str | None, roles: list[str]) -> list[str]:
    """Return the roles the token carries: all the client's, or the requested subset."""
    if requested is None:
        return list(roles)
    wanted = requested.split(" ")
    if any(not SCOPE_TOKEN.match(token) for token in wanted):
        raise InvalidScope(
            N_("The scope is malformed; send role names separated by single spaces.")
        )
    unknown = sorted(set(wanted) - set(roles))
    if unknown:
        raise InvalidScope(
            Message(
                "This client may not request {unknown}; it may request: {allowed}.",
                unknown=", ".join(unknown),
                allowed=", ".join(roles) or Message("nothing"),
            )
        )
    return [role for role in roles if role in wanted]


def issue_token(
    *, client: ApiClient, roles: list[str], keys: KeyRing, settings: GatewaySettings
) -> IssuedToken:
    """Sign an access token for `client` carrying `roles`."""
    return sign_access_token(
        subject=client.client_id, org_id=client.org_id, roles=roles, keys=keys, settings=settings
    )


def sign_access_token(
    *,
    subject: str,
    org_id: uuid.UUID,
    roles: list[str],
    keys: KeyRing,
    settings: GatewaySettings,
    extra: dict[str, str] | None = None,
) -> IssuedToken:
    """Sign a 5-minute access token for `subject` acting for `org_id` with `roles`."""
    now = int(time.time())
    scope = " ".join(roles)
    claims = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": subject,
        "org": str(org_id),
        "roles": roles,
        "scope": scope,
        "jti": new_id().hex,
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_s,
        **(extra or {}),
    }
    return IssuedToken(keys.sign(claims), settings.access_token_ttl_s, scope)
