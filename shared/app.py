"""The app factory every service builds on: errors, health, metrics, logging, auth, database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import version as package_version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.responses import Response

from shared.auth import FileJwks, TokenVerifier, UrlJwks
from shared.compression import Compression
from shared.db import Database
from shared.errors import Problem, install_problem_handlers
from shared.logging import configure_logging
from shared.middleware import HttpMetrics, RequestContextMiddleware
from shared.openapi import DocumentedMethods, document_conventions
from shared.settings import ServiceSettings
from shared.telemetry import configure_tracing, instrument_app, instrument_engine

ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
ReadinessCheck = Callable[[], Awaitable[None]]
OPERATIONAL_TAG = "operations"
# `<resource>.<verb>`, nested resources dotted, each part lowerCamelCase: `referrals.create`.
OPERATION_ID = re.compile(r"[a-z][a-zA-Z]*(\.[a-z][a-zA-Z]*)+")


def refex_version() -> str:
    """Return the installed refex version."""
    try:
        return package_version("refex")
    except Exception:
        return "0.0.0"


class Info(BaseModel):
    """What this process is and which database schema it runs on."""

    name: str = Field(examples=["referral"])
    version: str = Field(examples=["0.1.0"])
    database_backend: str = Field(examples=["postgresql"])
    migration_head: str | None = Field(examples=["0001"])


class Health(BaseModel):
    """A liveness or readiness answer."""

    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(default_factory=dict, examples=[{"database": "ok"}])


def operation_id(route: APIRoute) -> str:
    """Return a route's OpenAPI operationId: the `<resource>.<verb>` name it declares.

    Generated SDKs name their methods after it, so it must not change when a path or a Python
    function does. A route without such a name (`name=` on the decorator) gets
    `<tag>.<functionName>` so the document still builds; tests/test_operation_ids.py refuses it.
    """
    if OPERATION_ID.fullmatch(route.name):
        return route.name
    tag = str(route.tags[0]) if route.tags else OPERATIONAL_TAG
    return f"{_camel(tag)}.{_camel(route.name)}"


def _camel(words: str) -> str:
    first, *rest = re.split(r"[^A-Za-z0-9]+", words.strip()) or [""]
    return first.lower() + "".join(word.capitalize() for word in rest)


def verifier_from_settings(settings: ServiceSettings) -> TokenVerifier:
    """Build the token verifier for the configured JWKS file or URL."""
    source = (
        FileJwks(settings.jwks_file)
        if settings.jwks_file
        else UrlJwks(settings.jwks_url, ttl_s=settings.jwks_cache_ttl_s)
    )
    return TokenVerifier(source, issuer=settings.token_issuer, audience=settings.token_audience)


def build_service_app(
    *,
    title: str,
    description: str,
    settings: ServiceSettings,
    lifespan: ServiceLifespan | None = None,
    with_database: bool = True,
) -> FastAPI:
    """Create a FastAPI app with everything a refex service shares.

    `with_database=False` is for a service that keeps no data (the workspace): no engine, no
    database readiness check, and /info names no backend.
    """

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        app.state.db = Database(settings.database_url) if with_database else None
        app.state.verifier = verifier_from_settings(settings)
        app.state.readiness_checks = {}
        if app.state.db is not None:
            instrument_engine(app.state.db.engine)
            app.state.readiness_checks["database"] = app.state.db.ping
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            if app.state.db is not None:
                await app.state.db.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version=refex_version(),
        lifespan=app_lifespan,
        generate_unique_id_function=operation_id,
        # Metrics are Prometheus (/metrics); FastAPI's OpenTelemetry probe costs time per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    metrics = HttpMetrics(settings.service_name)
    app.state.metrics = metrics  # background loops add their gauges to the same registry
    app.add_middleware(DocumentedMethods, document=lambda: app.openapi())
    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes
    )
    # Outermost, so every answer (413s of the context middleware too) can be compressed.
    app.add_middleware(Compression)
    install_problem_handlers(app)
    _add_operational_routes(app, settings, metrics)
    if configure_tracing(settings.service_name):
        instrument_app(app)
    app.openapi = lambda: problem_aware_openapi(app)  # type: ignore[method-assign]
    return app


def _add_operational_routes(app: FastAPI, settings: ServiceSettings, metrics: HttpMetrics) -> None:
    @app.get(
        "/healthz",
        name="operations.liveness",
        tags=[OPERATIONAL_TAG],
        summary="Is the process alive?",
    )
    async def healthz() -> Health:
        """Answer 200 while the process runs; says nothing about its dependencies."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        name="operations.readiness",
        tags=[OPERATIONAL_TAG],
        summary="Can this service answer requests now?",
        responses={503: {"description": "A dependency is unreachable", "model": Health}},
    )
    async def readyz(request: Request) -> Any:
        """Check the database and every upstream this service needs; 503 names what failed."""
        checks: dict[str, str] = {}
        for name, check in request.app.state.readiness_checks.items():
            try:
                await check()
                checks[name] = "ok"
            except Exception:
                checks[name] = "unreachable"
        ready = all(value == "ok" for value in checks.values())
        health = Health(status="ok" if ready else "unavailable", checks=checks)
        return JSONResponse(health.model_dump(), status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        name="operations.metrics",
        tags=[OPERATIONAL_TAG],
        summary="Prometheus metrics",
        response_class=Response,
    )
    async def metrics_endpoint() -> Response:
        """Request counts and latencies per route template, process and business gauges."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/info",
        name="operations.info",
        tags=[OPERATIONAL_TAG],
        summary="Name, version and schema of this service",
    )
    async def info(request: Request) -> Info:
        """Say which service this is, its version, its database backend and migration head."""
        database: Database | None = request.app.state.db
        return Info(
            name=settings.service_name,
            version=refex_version(),
            database_backend=database.backend if database else "none",
            migration_head=await database.migration_head() if database else None,
        )


def problem_aware_openapi(app: FastAPI) -> dict[str, Any]:
    """Generate OpenAPI once, every error response documented as problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    document_conventions(schema)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
