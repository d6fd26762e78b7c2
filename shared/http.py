"""Typed async clients between service processes (aiohttp-backed httpx).

Why not httpx's default transport: docs/adr/0001-gateway-proxy-client.md.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar, Protocol

import httpx
from httpx_aiohttp import AiohttpTransport

from shared.errors import UpstreamTimeout, UpstreamUnavailable
from shared.i18n import N_, Message, current_language

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
TOKEN_REFRESH_MARGIN_S = 30


class TokenProvider(Protocol):
    """Gives the bearer token a service presents to another service."""

    async def token(self) -> str:
        """Return a currently valid access token."""
        ...

    def forget(self, refused: str) -> None:
        """Drop `refused` (answered 401 upstream) so the next `token()` fetches a new one."""
        ...


class StaticToken:
    """A fixed token (tests)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def forget(self, refused: str) -> None:
        """A fixed token cannot be renewed."""


class ClientCredentialsTokens:
    """Tokens from the gateway's /oauth/token, cached until shortly before they expire."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token_url = token_url
        self._auth = (client_id, client_secret)
        self._transport = transport
        self._token = ""
        self._valid_until = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if time.monotonic() >= self._valid_until:
                await self._fetch()
            return self._token

    def forget(self, refused: str) -> None:
        # Only the token that was refused: concurrent callers that already renewed keep theirs.
        if refused == self._token:
            self._valid_until = 0.0

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=5.0, trust_env=False
            ) as client:
                response = await client.post(
                    self._token_url, data={"grant_type": "client_credentials"}, auth=self._auth
                )
        except httpx.HTTPError:
            raise UpstreamUnavailable(N_("The gateway cannot issue a service token now.")) from None
        if response.status_code != 200:
            raise UpstreamUnavailable(N_("The gateway refused this service's credentials."))
        body = response.json()
        self._token = str(body["access_token"])
        self._valid_until = time.monotonic() + int(body["expires_in"]) - TOKEN_REFRESH_MARGIN_S


def default_transport() -> httpx.AsyncBaseTransport:
    """Return the production transport: aiohttp under the httpx API (6x less CPU)."""
    return AiohttpTransport(trust_env=False)


class ServiceClient:
    """Base of a typed client to another refex service; failures become 503/504 problems."""

    upstream: ClassVar[str] = "service"

    def __init__(
        self,
        base_url: str,
        *,
        tokens: TokenProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._tokens = tokens
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport or default_transport(),
            timeout=timeout,
            trust_env=False,
            # Between services on one network compressing costs CPU at both ends and saves
            # nothing; gzip is for the partners' links, at the edge.
            headers={"Accept-Encoding": "identity"},
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        """Send a request; 5xx, refused connections and timeouts raise problems.

        A 401 means the upstream refused our token before doing anything (for instance its
        signing key was withdrawn at the gateway), so the request is sent once more with a
        freshly issued token.
        """
        response = await self._send(method, path, json=json, params=params, request_id=request_id)
        refused = response.request.headers.get("Authorization", "").removeprefix("Bearer ")
        if response.status_code == 401 and self._tokens is not None and refused:
            self._tokens.forget(refused)
            response = await self._send(
                method, path, json=json, params=params, request_id=request_id
            )
        return response

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        request_id: str | None,
    ) -> httpx.Response:
        # Upstream problems are relayed to our caller, so they are asked for in its language.
        headers = {"Accept-Language": current_language()}
        if request_id:
            headers["X-Request-ID"] = request_id
        if self._tokens is not None:
            headers["Authorization"] = f"Bearer {await self._tokens.token()}"
        try:
            response = await self._http.request(
                method, path, json=json, params=params, headers=headers
            )
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                Message(
                    "The {upstream} service did not answer in time. Nothing was changed; "
                    "try again shortly.",
                    upstream=self.upstream,
                )
            ) from None
        except httpx.TransportError:
            raise UpstreamUnavailable(
                Message(
                    "The {upstream} service is unreachable. Nothing was changed; try again.",
                    upstream=self.upstream,
                )
            ) from None
        if response.status_code >= 500:
            raise UpstreamUnavailable(
                Message(
                    "The {upstream} service failed to answer. Nothing was changed; try again.",
                    upstream=self.upstream,
                )
            )
        return response

    async def ping(self) -> None:
        """Raise when the upstream's /healthz does not answer 200."""
        response = await self.request("GET", "/healthz")
        if response.status_code != 200:
            raise UpstreamUnavailable(
                Message("The {upstream} service is not healthy.", upstream=self.upstream)
            )

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()
