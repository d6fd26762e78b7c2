"""One pure-ASGI middleware: request id, language, body-size limit, access log line, metrics."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PROBLEM_MEDIA_TYPE, PayloadTooLarge, problem_type
from shared.i18n import _l, current_language, gettext, negotiate, use_language
from shared.ids import new_id
from shared.logging import current_service

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("refex.access")


class HttpMetrics:
    """Request counts and latencies per route template (never the raw path)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        # The standard process_*, python_gc_* and python_info series, beside our own.
        for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
            self.registry.register(collector)
        self.service = service
        self.requests = Counter(
            "refex_http_requests_total",
            "HTTP requests answered.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "refex_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # labels() costs ~20 µs; the children are reused
            children = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _request_id(scope: Scope) -> str:
    given = _header(scope, b"x-request-id")
    if given and REQUEST_ID_PATTERN.match(given.decode("latin-1")):
        return given.decode("latin-1")
    return new_id().hex


async def _send_too_large(send: Send, limit: int, request_id: str) -> None:
    body = orjson.dumps(
        {
            "type": problem_type(PayloadTooLarge.slug),
            "title": gettext(PayloadTooLarge.title),
            "status": 413,
            "instance": f"urn:request:{request_id}",
            "detail": _l(
                "The request body is larger than the {limit_kib} KiB this endpoint accepts. "
                "Send less data, or split documents into several requests.",
                limit_kib=limit // 1024,
            ).render(),
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                *_language_headers([]),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _language_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Content-Language unless the app (or the service behind the gateway) set one; Vary."""
    names = {name.lower() for name, _ in headers}
    added = []
    if b"content-language" not in names:
        added.append((b"content-language", current_language().encode()))
    vary = b", ".join(value for name, value in headers if name.lower() == b"vary")
    if b"accept-language" not in vary.lower():
        added.append((b"vary", b"Accept-Language"))
    return added


class RequestContextMiddleware:
    """Give every request an id, enforce the body limit, log one line and count it."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Also the lifespan: background tasks it starts inherit the service's name for logs.
        bound = current_service.set(self.metrics.service)
        try:
            await self._handle(scope, receive, send)
        finally:
            current_service.reset(bound)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        accept_language = _header(scope, b"accept-language")
        with use_language(
            negotiate(accept_language.decode("latin-1") if accept_language else None)
        ):
            await self._serve(scope, receive, send, request_id)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        limited_receive = await self._limited(scope, receive, send, request_id)
        if limited_receive is None:
            return
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.extend(
                    [(b"x-request-id", request_id.encode()), *_language_headers(headers)]
                )
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - started, request_id)

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> Receive | None:
        declared = _header(scope, b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                await _send_too_large(send, self.max_body_bytes, request_id)
                return None
            return receive
        if _header(scope, b"transfer-encoding") is None:
            return receive
        return await self._buffered(receive, send, request_id)

    async def _buffered(self, receive: Receive, send: Send, request_id: str) -> Receive | None:
        """Read a chunked body up to the limit, then replay it to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                await _send_too_large(send, self.max_body_bytes, request_id)
                return None
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        return replay

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route_obj: Any = scope.get("route")
        route = getattr(route_obj, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.observe(method, route, status, seconds)
        principal = scope.get("state", {}).get("principal")
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client_id": getattr(principal, "client_id", None),
                "org": getattr(principal, "org_id", None),
            },
        )
