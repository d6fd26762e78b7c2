"""The front door: route /api/v1/... to the services, after checking token, rate and size."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.errors import (
    HeadersTooLarge,
    ProxyBodyTooLarge,
    RateLimited,
    RouteNotFound,
    UpstreamDown,
    UpstreamSlow,
)
from services.gateway.ratelimit import RateLimiter
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import (
    ConnectFailed,
    Dropped,
    ProxyClient,
    TimedOut,
    UpstreamFailure,
    UpstreamReply,
)
from shared.auth import Principal, TokenVerifier
from shared.errors import ServiceError, Unauthenticated, problem_response
from shared.i18n import N_, Joined, _l

logger = logging.getLogger("refex.gateway.proxy")
API_PREFIX = "/api/v1"
# First external segment → (service, whether that segment is dropped upstream).
ROUTES: dict[str, tuple[str, bool]] = {
    "directory": ("directory", True),
    **dict.fromkeys(("consents", "decisions", "overrides", "disclosures"), ("consent", False)),
    **dict.fromkeys(("subjects", "ledger"), ("consent", False)),
    "referrals": ("referral", False),
    "casefile": ("referral", False),
}
INTERNAL_FIRST_SEGMENTS = frozenset({"internal", "healthz", "readyz", "metrics", "info"})
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Replaced by the gateway's own values rather than forwarded.
NOT_FORWARDED = HOP_BY_HOP | {b"host", b"content-length", b"x-request-id", b"x-forwarded-for"}
NOT_RETURNED = HOP_BY_HOP | {b"date", b"server", b"x-request-id"}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What metrics and logs name a proxied request by: never the concrete path."""

    path: str


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes."""

    service: str
    upstream_path: str
    segment: str
    template: RouteTemplate


def resolve(raw_path: bytes) -> Target:
    """Map an external raw path to its service and upstream raw path, or raise 404."""
    raw_segments = raw_path.decode("latin-1").split("/")[3:]  # after "", "api", "v1"
    decoded = [unquote(segment) for segment in raw_segments]
    if not decoded or decoded[0] not in ROUTES:
        raise RouteNotFound()
    service, drop_first = ROUTES[decoded[0]]
    if any(s in (".", "..") or "/" in s for s in decoded):
        raise RouteNotFound(
            N_("Paths with '.' or '..' segments or encoded slashes are not served.")
        )
    upstream_segments = raw_segments[1:] if drop_first else raw_segments
    first = decoded[1] if drop_first and len(decoded) > 1 else decoded[0]
    if (drop_first and len(decoded) < 2) or first in INTERNAL_FIRST_SEGMENTS:
        raise RouteNotFound()
    template = RouteTemplate(f"{API_PREFIX}/{decoded[0]}/{{path}}")
    return Target(service, "/" + "/".join(upstream_segments), decoded[0], template)


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope["headers"])


def _forward_headers(scope: Scope, request_id: str) -> list[tuple[str, str]]:
    connection_named: set[bytes] = set()
    for name, value in scope["headers"]:
        if name == b"connection":
            connection_named.update(v.strip().lower() for v in value.split(b","))
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in scope["headers"]
        if name not in NOT_FORWARDED and name not in connection_named
    ]
    client = scope.get("client")
    forwarded_for = [v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-for"]
    if client:
        forwarded_for.append(str(client[0]))
    if forwarded_for:
        headers.append(("x-forwarded-for", ", ".join(forwarded_for)))
    headers.append(("x-forwarded-proto", str(scope.get("scheme", "http"))))
    headers.append(("x-request-id", request_id))
    return headers


def _returned_headers(reply: UpstreamReply) -> list[tuple[bytes, bytes]]:
    connection_named = {
        token.strip().lower()
        for name, value in reply.headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [
        (name, value)
        for name, value in reply.headers
        if name.lower() not in NOT_RETURNED and name.lower() not in connection_named
    ]


def _bearer_token(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    if b"access_token" in query and any(
        name == "access_token" for name, _ in parse_qsl(query.decode("latin-1"))
    ):
        raise Unauthenticated(
            N_(
                "Tokens in the URL are refused because URLs get logged; "
                "send it in the Authorization header."
            ),
            error="invalid_request",
        )
    values = [v for n, v in scope["headers"] if n == b"authorization"]
    if len(values) != 1:
        raise Unauthenticated(error="invalid_request")
    scheme, _, token = bytes(values[0]).decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        raise Unauthenticated(
            N_("The Authorization header must be 'Bearer <token>'; get a token at /oauth/token."),
            error="invalid_request",
        )
    return token.strip()


class GatewayProxy:
    """ASGI app mounted at /api/v1 that forwards to the owning service."""

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        client: ProxyClient,
        verifier: TokenVerifier,
        limiter: RateLimiter,
    ) -> None:
        self._settings = settings
        self._client = client
        self._verifier = verifier
        self._limiter = limiter
        self._upstreams = {
            "directory": settings.directory_url.rstrip("/"),
            "consent": settings.consent_url.rstrip("/"),
            "referral": settings.referral_url.rstrip("/"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RouteNotFound()
        target = resolve(scope.get("raw_path") or scope["path"].encode())
        scope["route"] = target.template
        if _header_bytes(scope) > self._settings.max_header_bytes:
            raise HeadersTooLarge()
        principal = await self._authenticate(scope)
        await self._rate_limit(principal)
        body = await self._read_body(scope, receive, self._settings.body_limit(target.segment))
        reply = await self._forward(scope, target, body)
        await self._relay(reply, send, target.service, scope["method"])

    async def _authenticate(self, scope: Scope) -> Principal:
        principal = await self._verifier.verify(_bearer_token(scope))
        scope.setdefault("state", {})["principal"] = principal
        return principal

    async def _rate_limit(self, principal: Principal) -> None:
        wait = await self._limiter.take(principal.client_id)
        if wait > 0:
            raise RateLimited(headers={"Retry-After": str(max(1, math.ceil(wait)))})

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        declared = next((v for n, v in scope["headers"] if n == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise self._too_large(limit)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                raise self._too_large(limit)
            more = message.get("more_body", False)
        return b"".join(chunks)

    @staticmethod
    def _too_large(limit: int) -> ProxyBodyTooLarge:
        return ProxyBodyTooLarge(
            _l(
                "The request body is larger than the {limit_kib} KiB this endpoint accepts. "
                "Send less data, or split documents into several requests.",
                limit_kib=limit // 1024,
            )
        )

    async def _forward(self, scope: Scope, target: Target, body: bytes) -> UpstreamReply:
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        url = (
            self._upstreams[target.service] + target.upstream_path + (f"?{query}" if query else "")
        )
        request_id = scope.get("state", {}).get("request_id", "")
        headers = _forward_headers(scope, request_id)
        attempts = 2 if method in IDEMPOTENT else 1
        for attempt in range(attempts):
            try:
                return await self._client.send(method=method, url=url, headers=headers, body=body)
            except Dropped:
                if attempt + 1 == attempts:
                    raise self._problem(target.service, method, Dropped()) from None
            except UpstreamFailure as failure:
                raise self._problem(target.service, method, failure) from None
        raise AssertionError("unreachable")

    def _problem(self, service: str, method: str, failure: UpstreamFailure) -> Exception:
        if isinstance(failure, ConnectFailed):
            return UpstreamDown(
                _l(
                    "The {service} service is unreachable right now. Nothing was changed; "
                    "try again in a minute.",
                    service=service,
                )
            )
        detail = self._failure_detail(service, failure)
        if method not in IDEMPOTENT:
            detail = Joined(
                [
                    detail,
                    N_(
                        "If you sent a change, check whether it was applied before sending it "
                        "again."
                    ),
                ]
            )
        return UpstreamSlow(detail) if isinstance(failure, TimedOut) else UpstreamDown(detail)

    def _failure_detail(self, service: str, failure: UpstreamFailure) -> _l:
        if isinstance(failure, TimedOut):
            return _l(
                "The {service} service did not answer within {upstream_timeout_s:g} s. "
                "Try again shortly.",
                service=service,
                upstream_timeout_s=self._settings.upstream_timeout_s,
            )
        return _l(
            "The {service} service closed the connection before answering. Try again shortly.",
            service=service,
        )

    async def _relay(self, reply: UpstreamReply, send: Send, service: str, method: str) -> None:
        try:
            start: dict[str, Any] = {
                "type": "http.response.start",
                "status": reply.status,
                "headers": _returned_headers(reply),
            }
            if reply.length is not None and reply.length <= 1024 * 1024:
                try:
                    body = await reply.read()
                except UpstreamFailure as failure:
                    raise self._problem(service, method, failure) from None
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(start)
            async for chunk in reply.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await reply.release()


class ProblemBoundary:
    """Answer a ServiceError raised before the response started as problem+json."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exception:
            if started:
                raise
            error = exception if isinstance(exception, ServiceError) else ServiceError()
            if error.status >= 500 and not isinstance(exception, UpstreamFailure | ServiceError):
                logger.exception("unhandled error", extra={"error_type": type(exception).__name__})
            response = problem_response(
                status=error.status,
                title=error.title,
                slug=error.slug,
                detail=error.detail,
                request=Request(scope),
                headers=error.headers,
                **error.extensions,
            )
            await response(scope, receive, send)


class PrefixDispatch:
    """Send /api/v1/... straight to the proxy stack, everything else to the FastAPI app.

    Proxied calls are the hot path; they skip the framework's exception, body-limit and
    routing layers, which they do not use.
    """

    def __init__(self, prefix: str, proxied: ASGIApp, other: ASGIApp) -> None:
        self.prefix = prefix
        self.proxied = proxied
        self.other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.proxied(scope, receive, send)
        else:
            await self.other(scope, receive, send)
