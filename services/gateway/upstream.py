"""HTTP clients the proxy forwards with: bare aiohttp (production), or httpx (benchmark, tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport

from services.gateway.settings import GatewaySettings

Headers = Sequence[tuple[str, str]]


class UpstreamFailure(Exception):
    """The upstream could not be used; subclasses say how."""


class ConnectFailed(UpstreamFailure):
    """No connection could be made (refused, unresolvable, connect timeout)."""


class TimedOut(UpstreamFailure):
    """Connected, but no answer in time."""


class Dropped(UpstreamFailure):
    """The connection broke before a complete answer arrived."""


@dataclass(slots=True)
class UpstreamReply:
    """An upstream response whose body has not been read yet."""

    status: int
    headers: list[tuple[bytes, bytes]]
    length: int | None
    read: Callable[[], Awaitable[bytes]]
    chunks: Callable[[], AsyncIterator[bytes]]
    release: Callable[[], Awaitable[None]]


class ProxyClient(Protocol):
    """Sends one request upstream."""

    async def send(self, *, method: str, url: str, headers: Headers, body: bytes) -> UpstreamReply:
        """Send the request; raise an UpstreamFailure when no response arrives."""
        ...

    async def aclose(self) -> None:
        """Close pooled connections."""
        ...


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return None


class AiohttpProxyClient:
    """A pooled, keep-alive aiohttp session that leaves bodies and encodings untouched."""

    def __init__(self, *, timeout_s: float, connect_timeout_s: float, pool_size: int = 200) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so that it binds to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30),
                timeout=self._timeout,
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def send(self, *, method: str, url: str, headers: Headers, body: bytes) -> UpstreamReply:
        try:
            response = await self._client().request(
                method,
                yarl.URL(url, encoded=True),
                headers=list(headers),
                data=body or None,
                allow_redirects=False,
            )
        except aiohttp.ConnectionTimeoutError:
            raise ConnectFailed from None
        except TimeoutError:
            raise TimedOut from None
        except aiohttp.ClientConnectorError:
            raise ConnectFailed from None
        except aiohttp.ClientError:
            raise Dropped from None
        raw = [(bytes(k), bytes(v)) for k, v in response.raw_headers]

        async def read() -> bytes:
            try:
                return await response.read()
            except TimeoutError:
                raise TimedOut from None
            except aiohttp.ClientError:
                raise Dropped from None

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in response.content.iter_chunked(65536):
                yield chunk

        async def release() -> None:
            response.release()

        return UpstreamReply(response.status, raw, _content_length(raw), read, chunks, release)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxProxyClient:
    """httpx over a given transport (default, AiohttpTransport, or ASGI in tests)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            trust_env=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        )

    async def send(self, *, method: str, url: str, headers: Headers, body: bytes) -> UpstreamReply:
        request = self._client.build_request(method, url, headers=list(headers), content=body)
        if not any(name.lower() == "accept-encoding" for name, _ in headers):
            # httpx would ask for gzip on the client's behalf and relay it to one that did not.
            del request.headers["accept-encoding"]
        try:
            response = await self._client.send(request, stream=True)
        except httpx.ConnectTimeout:
            raise ConnectFailed from None
        except httpx.TimeoutException:
            raise TimedOut from None
        except httpx.ConnectError:
            raise ConnectFailed from None
        except httpx.TransportError:
            raise Dropped from None
        raw = list(response.headers.raw)

        async def read() -> bytes:
            try:
                return b"".join([chunk async for chunk in response.aiter_raw()])
            except httpx.TimeoutException:
                raise TimedOut from None
            except httpx.TransportError:
                raise Dropped from None

        return UpstreamReply(
            response.status_code,
            raw,
            _content_length(raw),
            read,
            response.aiter_raw,
            response.aclose,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def build_proxy_client(
    settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
) -> ProxyClient:
    """Return the configured proxy client (bare aiohttp unless told otherwise)."""
    timeout_s = settings.upstream_timeout_s
    connect_s = settings.upstream_connect_timeout_s
    if transport is None and settings.proxy_client == "aiohttp":
        return AiohttpProxyClient(timeout_s=timeout_s, connect_timeout_s=connect_s)
    if transport is None and settings.proxy_client == "httpx-aiohttp":
        transport = AiohttpTransport(trust_env=False)
    return HttpxProxyClient(timeout_s=timeout_s, connect_timeout_s=connect_s, transport=transport)
