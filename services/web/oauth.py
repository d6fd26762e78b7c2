"""The workspace's side of the authorization-code flow with PKCE (RFC 6749, RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import urlencode

from services.web.errors import SignInFailed
from services.web.sessions import PendingSignIn, Person, Tokens
from services.web.settings import WebSettings
from shared.auth import TokenVerifier
from shared.errors import ServiceError

REFRESH_MARGIN_S = 30  # refresh this long before the access token expires


def code_challenge(verifier: str) -> str:
    """The S256 challenge of a PKCE code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(settings: WebSettings, pending: PendingSignIn, language: str) -> str:
    """Where the browser goes to sign in at the gateway."""
    query = {
        "response_type": "code",
        "client_id": settings.oauth_client_id,
        "redirect_uri": settings.redirect_uri,
        "state": pending.state,
        "code_challenge": code_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
        "ui_locales": language,
    }
    return f"{settings.browser_gateway_url}/oauth/authorize?{urlencode(query)}"


def tokens_from(answer: dict[str, Any]) -> Tokens:
    """Read a token endpoint answer, refusing one without both tokens."""
    access, refresh = answer.get("access_token"), answer.get("refresh_token")
    expires_in = answer.get("expires_in")
    if not isinstance(access, str) or not isinstance(refresh, str):
        raise SignInFailed()
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
    return Tokens(access, refresh, time.monotonic() + lifetime)


async def person_of(verifier: TokenVerifier, access_token: str) -> Person:
    """Who the access token was issued for, once its signature and claims verify."""
    try:
        principal = await verifier.verify(access_token)
    except ServiceError:
        raise SignInFailed() from None
    if principal.person_id is None:  # a partner system's token, not a person's
        raise SignInFailed()
    return Person(
        person_id=str(principal.person_id),
        org_id=principal.org_id,
        roles=tuple(sorted(principal.roles)),
    )


def needs_refresh(tokens: Tokens) -> bool:
    """True when the access token expires within the margin."""
    return tokens.expires_at - time.monotonic() < REFRESH_MARGIN_S
