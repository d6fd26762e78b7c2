"""The workspace's side of the authorization-code flow with PKCE (RFC 6749, RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import urlencode

import orjson

from services.web.errors import SignInFailed
from services.web.sessions import PendingSignIn, Person, Tokens
from services.web.settings import WebSettings

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


def person_from(access_token: str) -> Person:
    """Who the access token was issued for (it came straight from the gateway's token endpoint)."""
    try:
        payload = access_token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        person = str(claims["person"])
        org = str(claims.get("org_id") or claims["org"])
        roles = tuple(str(role) for role in claims.get("roles", []))
    except (IndexError, KeyError, ValueError, TypeError):
        raise SignInFailed() from None
    return Person(person_id=person, org_id=org, roles=roles)


def needs_refresh(tokens: Tokens) -> bool:
    """True when the access token expires within the margin."""
    return tokens.expires_at - time.monotonic() < REFRESH_MARGIN_S
