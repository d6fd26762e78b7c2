"""Tokens for people: authorization code with PKCE (RFC 6749 §4.1, RFC 7636), refresh-token
rotation with reuse detection, and revocation (RFC 7009), for the workspace's public client."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository, users
from services.gateway.errors import InvalidClient, InvalidGrant, InvalidRequest
from services.gateway.keys import KeyRing
from services.gateway.models import AuthorizationCode, RefreshFamily, RefreshToken, UserAccount
from services.gateway.oauth import IssuedToken, sign_access_token
from services.gateway.settings import GatewaySettings
from shared.clock import utcnow
from shared.i18n import N_, gettext
from shared.ids import new_id

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 (a grant type, not a secret)
PKCE_METHOD = "S256"
# RFC 7636 §4.1: 43 to 128 unreserved characters; an S256 challenge is 43 base64url characters.
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
MAX_STATE_CHARS = 512
TOKEN_BYTES = 32


class AuthorizeRefused(Exception):
    """The authorization request names no client or redirect URI of ours: shown, never sent."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A checked authorization request: where the code goes and the challenge it is bound to."""

    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    ui_locales: str | None

    def hidden_fields(self) -> dict[str, str]:
        """The parameters the sign-in form carries to its POST, to be checked again there."""
        fields = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.code_challenge,
            "code_challenge_method": PKCE_METHOD,
        }
        if self.state is not None:
            fields["state"] = self.state
        if self.ui_locales:
            fields["ui_locales"] = self.ui_locales
        return fields

    def redirect(self, **params: str) -> str:
        """Return the redirect URI with `params` and the state added."""
        if self.state is not None:
            params["state"] = self.state
        separator = "&" if "?" in self.redirect_uri else "?"
        return f"{self.redirect_uri}{separator}{urlencode(params)}"


class AuthorizeError(Exception):
    """A malformed request from a known client: answered at its redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, request: AuthorizeRequest, description: str) -> None:
        self.request = request
        self.description = description
        super().__init__(description)

    def location(self, lang: str) -> str:
        """The redirect URI with the error, described in `lang`."""
        described = gettext(self.description, lang)
        return self.request.redirect(error="invalid_request", error_description=described)


def checked_authorize(params: dict[str, str], settings: GatewaySettings) -> AuthorizeRequest:
    """Check an authorization request; raise AuthorizeRefused or AuthorizeError."""
    if params.get("client_id") != settings.web_client_id:
        raise AuthorizeRefused(N_("This application is not registered to sign people in."))
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in settings.redirect_uris():
        raise AuthorizeRefused(
            N_("The address to return to is not registered for this application.")
        )
    state = params.get("state")
    request = AuthorizeRequest(
        client_id=settings.web_client_id,
        redirect_uri=redirect_uri,
        state=state[:MAX_STATE_CHARS] if state is not None else None,
        code_challenge=params.get("code_challenge", ""),
        ui_locales=params.get("ui_locales"),
    )
    if params.get("response_type") != "code":
        raise AuthorizeError(request, N_("response_type must be code."))
    if params.get("code_challenge_method") != PKCE_METHOD:
        raise AuthorizeError(request, N_("PKCE is required: code_challenge_method must be S256."))
    if not CHALLENGE.match(request.code_challenge):
        raise AuthorizeError(
            request, N_("code_challenge must be the base64url SHA-256 of a PKCE verifier.")
        )
    return request


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def s256(verifier: str) -> str:
    """Return the S256 code challenge of a PKCE verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def issue_code(
    *,
    session: AsyncSession,
    request: AuthorizeRequest,
    user: UserAccount,
    settings: GatewaySettings,
) -> str:
    """Store a single-use code for the signed-in user and return it."""
    code = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    row = AuthorizationCode(
        code_hash=_digest(code),
        client_id=request.client_id,
        redirect_uri=request.redirect_uri,
        code_challenge=request.code_challenge,
        user_id=user.user_id,
        expires_at=now + timedelta(seconds=settings.authorization_code_ttl_s),
    )
    await repository.add_code(session=session, code=row, now=now)
    return code


def check_public_client(form: dict[str, str], settings: GatewaySettings) -> str:
    """Return the workspace's client id when the form names it, else raise invalid_client."""
    client_id = form.get("client_id")
    if client_id is None:
        raise InvalidRequest(N_("client_id is missing; the workspace sends client_id=refex-web."))
    if client_id != settings.web_client_id or "client_secret" in form:
        raise InvalidClient(
            N_("Only the workspace's public client may use this grant; check client_id.")
        )
    return client_id


@dataclass(frozen=True, slots=True)
class PersonTokens:
    """What a person's token request returns."""

    access: IssuedToken
    refresh_token: str


async def exchange_code(
    *, session: AsyncSession, form: dict[str, str], keys: KeyRing, settings: GatewaySettings
) -> PersonTokens:
    """Redeem an authorization code once, checking client, redirect URI and PKCE verifier."""
    client_id = check_public_client(form, settings)
    code, verifier = form.get("code"), form.get("code_verifier")
    if not code or not verifier:
        raise InvalidRequest(N_("Send the code, the redirect_uri and the PKCE code_verifier."))
    now = utcnow()
    row, first = await repository.claim_code(session=session, code_hash=_digest(code), now=now)
    if row is None:
        raise InvalidGrant(N_("The authorization code is not valid; sign in again."))
    if not first:
        # RFC 6749 §4.1.2: a code used twice may have been stolen; end what it started.
        if row.family_id is not None:
            await repository.revoke_families(
                session=session, now=now, reason="code-reuse", family_id=row.family_id
            )
        raise InvalidGrant(N_("The authorization code was already used; sign in again."))
    if row.expires_at < now:
        raise InvalidGrant(N_("The authorization code has expired; sign in again."))
    if row.client_id != client_id or row.redirect_uri != form.get("redirect_uri"):
        raise InvalidGrant(
            N_("The code was issued to another client or redirect_uri; sign in again.")
        )
    if not VERIFIER.match(verifier) or not secrets.compare_digest(
        s256(verifier), row.code_challenge
    ):
        raise InvalidGrant(N_("The code_verifier does not match the code_challenge."))
    user = await _usable_user(session, row.user_id)
    family = RefreshFamily(
        family_id=new_id(),
        user_id=user.user_id,
        client_id=client_id,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_session_ttl_s),
    )
    await repository.add_family(session=session, family=family, now=now)
    row.family_id = family.family_id
    return PersonTokens(
        access=person_token(user=user, client_id=client_id, keys=keys, settings=settings),
        refresh_token=await _new_refresh(session, family.family_id),
    )


async def _usable_user(session: AsyncSession, user_id: uuid.UUID) -> UserAccount:
    user = await repository.get_user(session=session, user_id=user_id)
    if user is None or not user.enabled:
        raise InvalidGrant(N_("This account is disabled; ask an administrator."))
    return user


async def _new_refresh(session: AsyncSession, family_id: uuid.UUID) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = RefreshToken(token_hash=_digest(token), family_id=family_id, issued_at=utcnow())
    await repository.add_refresh_token(session=session, token=row)
    return token


async def refresh(
    *, session: AsyncSession, form: dict[str, str], keys: KeyRing, settings: GatewaySettings
) -> PersonTokens:
    """Rotate a refresh token: a new access and refresh token; a replayed one ends the family."""
    client_id = check_public_client(form, settings)
    presented = form.get("refresh_token")
    if not presented:
        raise InvalidRequest(N_("refresh_token is missing."))
    now = utcnow()
    found = await repository.get_refresh(session=session, token_hash=_digest(presented))
    if found is None or found[1].client_id != client_id:
        raise InvalidGrant(N_("The refresh token is not valid; sign in again."))
    token, family = found
    if family.revoked_at is not None or family.expires_at < now:
        raise InvalidGrant(N_("This sign-in has ended; sign in again."))
    if not await repository.use_refresh(session=session, token_hash=token.token_hash, now=now):
        await repository.revoke_families(
            session=session, now=now, reason="reuse", family_id=family.family_id
        )
        await users.record(session=session, user_id=family.user_id, action="user.refresh-reused")
        raise InvalidGrant(
            N_("This refresh token was already used, so the sign-in was ended; sign in again.")
        )
    user = await _usable_user(session, family.user_id)
    return PersonTokens(
        access=person_token(user=user, client_id=client_id, keys=keys, settings=settings),
        refresh_token=await _new_refresh(session, family.family_id),
    )


async def revoke(*, session: AsyncSession, form: dict[str, str], settings: GatewaySettings) -> None:
    """End the sign-in a refresh token belongs to; unknown tokens are ignored (RFC 7009 §2.2)."""
    client_id = check_public_client(form, settings)
    presented = form.get("token")
    if not presented:
        raise InvalidRequest(N_("token is missing; send the refresh token to revoke."))
    found = await repository.get_refresh(session=session, token_hash=_digest(presented))
    if found is None or found[1].client_id != client_id:
        return  # access tokens and unknown tokens: nothing to revoke, and no oracle either
    await repository.revoke_families(
        session=session, now=utcnow(), reason="revoked", family_id=found[1].family_id
    )


def person_subject(user_id: uuid.UUID) -> str:
    """Return the `sub` of a person's tokens."""
    return f"user:{user_id}"


def person_token(
    *, user: UserAccount, client_id: str, keys: KeyRing, settings: GatewaySettings
) -> IssuedToken:
    """Sign a 5-minute access token for a person: their organisation, roles and id."""
    return sign_access_token(
        subject=person_subject(user.user_id),
        org_id=user.org_id,
        roles=list(user.roles),
        keys=keys,
        settings=settings,
        extra={"org_id": str(user.org_id), "person": str(user.user_id), "client_id": client_id},
    )
