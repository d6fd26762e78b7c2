"""Calls to the gateway: the OAuth endpoints and the public API, as the signed-in person."""

from __future__ import annotations

from typing import Any

import httpx

from services.web import oauth
from services.web.errors import ApiUnavailable, SignedOut, SignInFailed
from services.web.sessions import PendingSignIn, Session, Tokens
from services.web.settings import WebSettings
from shared.i18n import current_language

API = "/api/v1"


class ApiAnswer:
    """A status and a decoded JSON body (a problem document when the API refused)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    def problem_detail(self) -> str:
        """The problem's detail (already in the caller's language), for showing on the page."""
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or "")
        return ""


class Gateway:
    """The workspace's one HTTP client to the gateway."""

    def __init__(
        self, settings: WebSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._http = httpx.AsyncClient(
            base_url=settings.gateway_url.rstrip("/"),
            timeout=settings.upstream_timeout_s,
            transport=transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def exchange_code(self, *, code: str, pending: PendingSignIn) -> Tokens:
        """Trade an authorization code for tokens (the code verifier proves who asked)."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._settings.redirect_uri,
                "client_id": self._settings.oauth_client_id,
                "code_verifier": pending.code_verifier,
            },
            failure=SignInFailed,
        )

    async def refresh(self, session: Session) -> None:
        """Renew the session's tokens (rotation: the old refresh token is spent)."""
        assert session.tokens is not None
        session.tokens = await self._token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": session.tokens.refresh_token,
                "client_id": self._settings.oauth_client_id,
            },
            failure=SignedOut,
        )

    async def revoke(self, tokens: Tokens) -> None:
        """Revoke the refresh token (RFC 7009); an unreachable gateway is not the user's problem."""
        try:
            await self._http.post(
                "/oauth/revoke",
                data={"token": tokens.refresh_token, "client_id": self._settings.oauth_client_id},
            )
        except httpx.HTTPError:
            return

    async def _token_request(
        self, form: dict[str, str], *, failure: type[SignInFailed | SignedOut]
    ) -> Tokens:
        try:
            answer = await self._http.post("/oauth/token", data=form)
        except httpx.HTTPError:
            raise ApiUnavailable() from None
        if answer.status_code >= 500:
            raise ApiUnavailable()
        if answer.status_code != 200:
            raise failure()
        try:
            return oauth.tokens_from(answer.json())
        except ValueError:
            raise failure() from None

    async def call(
        self,
        session: Session,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> ApiAnswer:
        """Call the public API as the session's person, refreshing the token when it is due."""
        token = await self._access_token(session)
        sent = {
            "Authorization": f"Bearer {token}",
            "Accept-Language": current_language(),
            **(headers or {}),
        }
        try:
            answer = await self._http.request(
                method, f"{API}/{path.lstrip('/')}", params=params, json=json, headers=sent
            )
        except httpx.HTTPError:
            raise ApiUnavailable() from None
        if answer.status_code == 401:
            raise SignedOut()
        if answer.status_code >= 500 and answer.status_code != 503:
            raise ApiUnavailable()
        try:
            body = answer.json() if answer.content else None
        except ValueError:
            body = None
        return ApiAnswer(answer.status_code, body)

    async def _access_token(self, session: Session) -> str:
        if session.tokens is None:
            raise SignedOut()
        async with session.refreshing:  # one refresh per session at a time (rotation)
            if oauth.needs_refresh(session.tokens):
                await self.refresh(session)
        return session.tokens.access_token
