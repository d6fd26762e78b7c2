"""Opt-in OpenTelemetry tracing, configured by the standard `OTEL_*` variables.

Tracing is off unless `OTEL_TRACES_EXPORTER` (`console`, `otlp`) or an OTLP endpoint is set, and
`OTEL_SDK_DISABLED=true` always wins. Spans cover FastAPI requests, httpx and aiohttp client calls
(so one trace follows a referral from the gateway through referral, directory and consent) and
SQLAlchemy statements. Spans keep an allow-list of attributes only: raw paths, query strings and
full URLs are dropped, because some paths carry a pseudonym; route templates stay.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Scope

# Attributes that name an operation or its result, never what it was about.
KEPT_ATTRIBUTES = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "server.address",
        "server.port",
        "net.peer.name",
        "net.peer.port",
        "network.protocol.version",
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.operation",
        "db.statement",  # SQLAlchemy sends placeholders, never bound values
        "error.type",
        "refex.service",
    }
)
EXCLUDED_URLS = "healthz,readyz,metrics"


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard OTEL_* variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        return any(name.strip() not in ("", "none") for name in exporters.split(","))
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


class RedactingExporter(SpanExporter):
    """Pass spans on with only the allow-listed attributes (events and links dropped)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export redacted copies of `spans`."""
        return self.inner.export([redacted(span) for span in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


def redacted(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` keeping only the attributes in KEPT_ATTRIBUTES."""
    attributes = {k: v for k, v in (span.attributes or {}).items() if k in KEPT_ATTRIBUTES}
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + os.linesep


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "console":  # one line per span, beside the JSON log lines
            exporters.append(ConsoleSpanExporter(formatter=_one_line))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name not in ("", "none"):
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; use console, otlp or none"
            )
    return exporters


def configure_tracing(
    service_name: str,
    *,
    environ: Mapping[str, str] = os.environ,
    exporters: Sequence[SpanExporter] | None = None,
) -> bool:
    """Install the tracer provider and client instrumentation once per process, if asked."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True
    if exporters is None:
        if not tracing_requested(environ):
            return False
        exporters = _exporters(environ)
    name = environ.get("OTEL_SERVICE_NAME") or f"refex-{service_name}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(RedactingExporter(exporter)))
    trace.set_tracer_provider(provider)
    _instrument_clients()
    return True


def _instrument_clients() -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()
    AioHttpClientInstrumentor().instrument()


def tracing_enabled() -> bool:
    """Whether a real tracer provider is installed in this process."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def instrument_app(app: FastAPI) -> None:
    """Trace this app's requests (probes and /metrics excluded) when tracing is on."""
    if not tracing_enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS)


def instrument_engine(engine: AsyncEngine) -> None:
    """Trace this engine's statements when tracing is on."""
    if not tracing_enabled():
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation's declared range lags SQLAlchemy releases; the engine events it uses
    # are stable, so the dependency check is skipped rather than losing database spans.
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, skip_dep_check=True)


def traced_asgi(app: ASGIApp, *, span_prefix_segments: int = 3) -> ASGIApp:
    """Wrap a bare ASGI app (the gateway's proxy) in server spans when tracing is on.

    The span is named by method and the first `span_prefix_segments` path segments
    (`POST /api/v1/referrals`), never by ids further down the path.
    """
    if not tracing_enabled():
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
        segments = scope.get("path", "").split("/")[1 : span_prefix_segments + 1]
        return f"{scope.get('method', 'HTTP')} /{'/'.join(segments)}", {}

    return OpenTelemetryMiddleware(
        app, excluded_urls=EXCLUDED_URLS, default_span_details=span_details
    )


def current_trace_id() -> str | None:
    """The W3C trace id of the span in progress, or None outside a sampled trace."""
    context: Any = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
