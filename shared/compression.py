"""gzip for answers of 1 KiB and more when the client accepts it: slow links are the users' reality.

Starlette's GZipMiddleware does the work (streaming, Vary, already-encoded answers left alone);
this only reads `Accept-Encoding` the way RFC 9110 says, so `gzip;q=0` means "never gzip".
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware, GZipResponder
from starlette.types import ASGIApp, Receive, Scope, Send

MINIMUM_BYTES = 1024
# zlib's default: level 9 costs about twice the CPU for JSON barely smaller.
LEVEL = 6


def _weight(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an `Accept-Encoding` value admits gzip (explicitly or by `*`), q above zero."""
    weights: dict[str, float] = {}
    for entry in (accept_encoding or "").split(","):
        coding, *parameters = entry.split(";")
        if coding.strip():
            weights[coding.strip().lower()] = _weight(parameters)
    for name in ("gzip", "x-gzip"):
        if name in weights:
            return weights[name] > 0
    return weights.get("*", 0.0) > 0


class Compression(GZipMiddleware):
    """GZipMiddleware that honours q-values; every service gets it from the app factory."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, minimum_size=MINIMUM_BYTES, compresslevel=LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not accepts_gzip(Headers(scope=scope).get("accept-encoding")):
            # Straight through: an identity answer suits every client, so it needs no Vary.
            await self.app(scope, receive, send)
            return
        responder = GZipResponder(
            self.app,
            self.minimum_size,
            compresslevel=self.compresslevel,
            thread_minimum_size=self.thread_minimum_size,
            exclude_content_types=self.exclude_content_types,
        )
        await responder(scope, receive, send)
