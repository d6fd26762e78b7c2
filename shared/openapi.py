"""OpenAPI response conventions: the error statuses every operation can answer, in one place.

The framework and our shared layers answer some statuses for any operation of a kind (a token
check, a path id, a JSON body, a cursor, a database), whatever the route itself declares. They
are derived here from the generated document, so an endpoint added tomorrow documents them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BeforeValidator
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import (
    PROBLEM_MEDIA_TYPE,
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceError,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
    problem_response,
    problem_type,
)
from shared.i18n import N_

PROBLEM_REF = "#/components/schemas/Problem"
NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
# Answered without touching the database, a token or another service.
SELF_CONTAINED_PATHS = frozenset({"/healthz", "/metrics"})
JSON_MEDIA_TYPES = ("application/json",)

# status -> (what the caller reads in the document, the problem its example shows)
CONVENTIONS: dict[int, tuple[str, type[ServiceError], str | None]] = {
    400: (
        "The body is not valid JSON, or a cursor is not one this service issued.",
        BadRequest,
        "The body is not valid JSON. Check quotes, commas and brackets, then resend.",
    ),
    401: ("No valid access token was sent; get one at /oauth/token.", Unauthenticated, None),
    403: ("Your role or organisation does not allow this operation.", Forbidden, None),
    404: ("Nothing exists at this address, or your organisation may not see it.", NotFound, None),
    409: (
        "The request conflicts with the object's current state, or an Idempotency-Key was "
        "reused with a different body.",
        Conflict,
        "This Idempotency-Key was used before with a different body; use a new key.",
    ),
    412: ("The object changed since you read it (If-Match is stale).", PreconditionFailed, None),
    413: (
        "The request body is larger than this endpoint accepts.",
        PayloadTooLarge,
        "The request body is larger than this endpoint accepts. Send less data.",
    ),
    415: ("The body is not sent as application/json.", UnsupportedMediaType, None),
    422: ("Some inputs are missing or invalid; 'errors' names each one.", ValidationFailed, None),
    429: (
        "Too many requests from this client; wait Retry-After seconds.",
        TooManyRequests,
        "Too many requests from this client; wait the Retry-After seconds, then try again.",
    ),
    503: (
        "The database or a service needed for this request is unreachable; nothing was changed.",
        UpstreamUnavailable,
        None,
    ),
    504: ("A service needed for this request did not answer in time.", UpstreamTimeout, None),
}


def iso_8601_only(value: Any) -> Any:
    """Refuse the Unix timestamps pydantic would read as a time: the document says date-time."""
    if isinstance(value, int | float) or (isinstance(value, str) and NUMBER.fullmatch(value)):
        raise ValueError(
            N_("give an ISO 8601 date-time such as 2026-11-25T08:00:00Z, not a number")
        )
    return value


# A date-time validated as its schema (`format: date-time`) says, for parameters and fields.
IsoDateTime = Annotated[datetime, BeforeValidator(iso_8601_only)]


def problem_example(status: int) -> dict[str, Any]:
    """An example problem document for `status`."""
    _, error, detail = CONVENTIONS[status]
    return {
        "type": problem_type(error.slug),
        "title": error.title,
        "status": status,
        "detail": detail or error.detail,
    }


def problem_response_doc(status: int, description: str | None = None) -> dict[str, Any]:
    """A documented problem+json response, with the Problem schema and an example."""
    content: dict[str, Any] = {"schema": {"$ref": PROBLEM_REF}}
    if status in CONVENTIONS:
        content["example"] = problem_example(status)
    return {
        "description": description or CONVENTIONS.get(status, ("Problem",))[0],
        "content": {PROBLEM_MEDIA_TYPE: content},
    }


def conventional_statuses(path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses our shared layers may answer for this operation."""
    parameters = operation.get("parameters", [])
    located = {(p.get("in"), str(p.get("name", "")).lower()) for p in parameters}
    body = operation.get("requestBody")
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 403}
    if any(where == "path" for where, _ in located):
        statuses.add(404)
    if parameters or body:
        statuses.add(422)
    if body:
        statuses.add(413)
        if any(media in body.get("content", {}) for media in JSON_MEDIA_TYPES):
            statuses |= {400, 415}
    if ("query", "cursor") in located:
        statuses.add(400)
    if ("header", "if-match") in located:
        statuses.add(412)
    if ("header", "idempotency-key") in located:
        statuses.add(409)
    if path not in SELF_CONTAINED_PATHS:
        statuses.add(503)
    return statuses


def document_conventions(schema: dict[str, Any]) -> None:
    """Add the conventional statuses to every operation and examples to every problem."""
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(conventional_statuses(path, operation)):
                responses.setdefault(str(status), problem_response_doc(status))
            for status, response in responses.items():
                _as_problem(status, response)


def _as_problem(status: str, response: dict[str, Any]) -> None:
    """Document an error response as problem+json (FastAPI's 422 comes as its own shape)."""
    content = response.get("content", {})
    if status != "422" and PROBLEM_MEDIA_TYPE not in content:
        return
    code = int(status) if status.isdigit() else 0
    conventional = problem_response_doc(code) if code in CONVENTIONS else {}
    problem = conventional.get("content", {}).get(PROBLEM_MEDIA_TYPE, {})
    given = content.get(PROBLEM_MEDIA_TYPE, {})
    response["content"] = {
        PROBLEM_MEDIA_TYPE: {**problem, **given, "schema": {"$ref": PROBLEM_REF}}
    }
    generic = {"", "Problem", "Validation Error", _phrase(code)}
    if conventional and response.get("description", "") in generic:
        response["description"] = conventional["description"]


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


class DocumentedMethods:
    """Answer 405 for a method the document does not list for the path, with a matching Allow.

    The router alone disagrees with the document twice: its Allow names only the first route
    that matched (FastAPI makes one route per method), and a literal path (`/services/search`)
    is also matched by a template beside it (`/services/{service_id}`), so `PATCH` there runs
    the template's handler instead of answering 405.
    """

    def __init__(self, app: ASGIApp, *, document: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self._document = document
        self._resources: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = self.allowed(scope["path"])
            if allowed is not None and scope["method"] not in allowed:
                await self._not_allowed(scope, allowed)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def allowed(self, path: str) -> frozenset[str] | None:
        """The documented methods of the path item `path` belongs to; None when undocumented."""
        if self._resources is None:
            self._resources = _resources(self._document())
        for pattern, methods in self._resources:
            if pattern.fullmatch(path):
                return methods
        return None

    @staticmethod
    def _not_allowed(scope: Scope, allowed: frozenset[str]) -> Response:
        return problem_response(
            request=Request(scope),
            status=405,
            title=MethodNotAllowed.title,
            slug=MethodNotAllowed.slug,
            detail=N_("This address does not accept this method; 'Allow' lists the ones it does."),
            headers={"Allow": ", ".join(sorted(allowed))},
        )


def _resources(document: dict[str, Any]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Each documented path as a pattern, literal paths and fewer parameters first."""
    resources = []
    for path, item in document.get("paths", {}).items():
        methods = frozenset(m.upper() for m in item if m in HTTP_METHODS)
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
        resources.append((path.count("{"), path, re.compile(pattern), methods))
    resources.sort(key=lambda resource: resource[:2])
    return [(pattern, methods) for _, _, pattern, methods in resources]
