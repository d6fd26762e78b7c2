"""One error family answered as RFC 9457 problem+json, and the handlers that do it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.i18n import N_, Message, current_language, gettext, localize
from shared.telemetry import current_trace_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:refex:problem:"
logger = logging.getLogger("refex.errors")


class ServiceError(Exception):
    """Base of every error we answer with problem+json."""

    status = 500
    title = N_("Internal error")
    slug = "internal-error"
    detail: str | Message = N_(
        "Something went wrong on our side. Try again; if it keeps failing, contact support."
    )

    def __init__(
        self,
        detail: str | Message | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        # A plain `str` detail is a msgid too: it is translated when the problem is rendered.
        self.detail = detail or type(self).detail
        self.headers = dict(headers or {})
        self.extensions = extensions
        super().__init__(localize(self.detail, "en"))


class BadRequest(ServiceError):
    """The request cannot be understood as sent."""

    status = 400
    title = N_("Bad request")
    slug = "bad-request"


class Unauthenticated(ServiceError):
    """No valid credentials were presented."""

    status = 401
    title = N_("Authentication required")
    slug = "unauthenticated"
    detail = N_(
        "Send a valid access token as 'Authorization: Bearer <token>'; get one at /oauth/token."
    )

    def __init__(self, detail: str | Message | None = None, **extensions: Any) -> None:
        error = extensions.pop("error", "invalid_token")
        challenge = f'Bearer realm="refex", error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge}, **extensions)


class Forbidden(ServiceError):
    """The caller is known but its role does not allow this."""

    status = 403
    title = N_("Not allowed")
    slug = "forbidden"
    detail = N_("Your role does not allow this operation.")


class NotFound(ServiceError):
    """The object does not exist or the caller's organisation may not see it."""

    status = 404
    title = N_("Not found")
    slug = "not-found"
    detail = N_("Nothing exists at this address, or your organisation may not see it.")


class MethodNotAllowed(ServiceError):
    """The path exists but not with this method."""

    status = 405
    title = N_("Method not allowed")
    slug = "method-not-allowed"


class Conflict(ServiceError):
    """The request conflicts with the current state of the object."""

    status = 409
    title = N_("Conflict")
    slug = "conflict"


class PreconditionFailed(ServiceError):
    """The object changed since the caller read it (If-Match mismatch)."""

    status = 412
    title = N_("Changed by someone else")
    slug = "precondition-failed"
    detail = N_("This object changed since you read it. Read it again, then repeat your change.")


class PayloadTooLarge(ServiceError):
    """The body is larger than this endpoint accepts."""

    status = 413
    title = N_("Request body too large")
    slug = "payload-too-large"


class UnsupportedMediaType(ServiceError):
    """The body is sent in a format this endpoint does not read."""

    status = 415
    title = N_("Body not sent as JSON")
    slug = "unsupported-media-type"
    detail = N_("Send the body as JSON with the header 'Content-Type: application/json'.")


class UnprocessableContent(ServiceError):
    """The request is well-formed but breaks a rule."""

    status = 422
    title = N_("Request breaks a rule")
    slug = "unprocessable"


class ValidationFailed(UnprocessableContent):
    """One or more fields are invalid."""

    title = N_("Invalid input")
    slug = "validation-failed"
    detail = N_("Some fields are missing or invalid; see 'errors' for each one and correct them.")


class TooManyRequests(ServiceError):
    """The caller exceeded its rate limit."""

    status = 429
    title = N_("Too many requests")
    slug = "rate-limited"


class UpstreamUnavailable(ServiceError):
    """A service this one depends on cannot be reached."""

    status = 503
    title = N_("Service temporarily unavailable")
    slug = "upstream-unavailable"
    detail = N_("A service needed for this request is unreachable. Nothing was changed; try again.")


class UpstreamTimeout(ServiceError):
    """A service this one depends on did not answer in time."""

    status = 504
    title = N_("Service did not answer in time")
    slug = "upstream-timeout"
    detail = N_("A service needed for this request did not answer in time. Try again shortly.")


def problem_type(slug: str) -> str:
    """Return the problem type URI for `slug`."""
    return PROBLEM_BASE + slug


class FieldError(BaseModel):
    """One invalid input field."""

    loc: list[str | int] = Field(examples=[["body", "subject_ref"]])
    msg: str = Field(examples=["String should have at least 16 characters"])
    type: str = Field(examples=["string_too_short"])


class Problem(BaseModel):
    """RFC 9457 problem details. `title`, `detail` and `errors[].msg` are in the language
    `Accept-Language` prefers (English or French, e.g. `fr-SN;q=0.9` gives French; others get
    English); every answer states it in `Content-Language` and sends `Vary: Accept-Language`.
    `type`, `status`, codes, enum values and field names are never translated."""

    type: str = Field(examples=[problem_type("validation-failed")])
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["Some fields are missing or invalid; see 'errors'."])
    instance: str | None = Field(None, examples=["urn:uuid:0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"])
    errors: list[FieldError] | None = None
    trace_id: str | None = Field(
        None,
        description="W3C trace id of the call when tracing is on (OTEL_*), for support.",
        examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
    )

    model_config = {"extra": "allow"}


def problem_response(
    *,
    status: int,
    title: str,
    slug: str,
    detail: str | Message,
    request: Request | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build a problem+json response in the caller's language; `instance` names the request."""
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": gettext(title),
        "status": status,
        "detail": localize(detail),
    }
    request_id = getattr(request.state, "request_id", None) if request else None
    if request_id:
        body["instance"] = f"urn:request:{request_id}"
    trace_id = current_trace_id()
    if trace_id is not None:  # lets support find every span of the failed call
        body["trace_id"] = trace_id
    body.update({name: _localized(value) for name, value in extensions.items()})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def _localized(value: Any) -> Any:
    """Render the lazy texts an extension carries; codes and plain values stay as they are."""
    if isinstance(value, Message):
        return value.render()
    if isinstance(value, list):
        return [_localized(item) for item in value]
    if isinstance(value, dict):
        return {key: _localized(item) for key, item in value.items()}
    return value


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Document the problem responses an endpoint can give (401 and 403 always apply)."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({401, 403, *statuses}):
        documented[status] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return documented


def _log_context(request: Request) -> dict[str, Any]:
    """Name the request and the service: these handlers run outside the request's log context."""
    settings = getattr(request.app.state, "settings", None)
    return {
        "request_id": getattr(request.state, "request_id", None),
        "service": getattr(settings, "service_name", None),
    }


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        logger.error(
            "request failed",
            exc_info=exc if exc.status == 500 else None,  # a bare 500 is a bug: keep its stack
            extra={"problem": exc.slug, "status": exc.status, **_log_context(request)},
        )
    return problem_response(
        status=exc.status,
        title=exc.title,
        slug=exc.slug,
        detail=exc.detail,
        request=request,
        headers=exc.headers,
        **exc.extensions,
    )


# pydantic's own messages for the error types callers meet, as msgids with its placeholders.
PYDANTIC_MESSAGES: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer"),
    "float_parsing": N_("Input should be a valid number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "literal_error": N_("Input should be {expected}"),
    "enum": N_("Input should be {expected}"),
    "uuid_type": N_("Input should be a valid UUID"),
    "uuid_parsing": N_("Input should be a valid UUID"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date"),
    "timezone_aware": N_("Input should have timezone info"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or object"),
    "model_attributes_type": N_("Input should be a valid dictionary or object"),
    "too_short": N_("List should have at least {min_length} items"),
    "too_long": N_("List should have at most {max_length} items"),
    "url_parsing": N_("Input should be a valid URL"),
    "url_type": N_("Input should be a valid URL"),
}
VALUE_ERROR = N_("Value error, {error}")
CHOICES = N_("{choices} or {last}")  # the end of pydantic's list of allowed values


def validation_message(error: Mapping[str, Any]) -> str:
    """pydantic's message as it is in English; in another language, from our catalog."""
    msg = str(error.get("msg", ""))
    if current_language() == "en":
        return msg
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if error.get("type") in ("value_error", "assertion_error") and isinstance(cause, Exception):
        reason = cause.args[0] if cause.args else str(cause)
        return gettext(VALUE_ERROR).format(error=localize(reason))
    template = PYDANTIC_MESSAGES.get(str(error.get("type", "")))
    if template is None:
        return gettext(msg)
    expected = ctx.get("expected")
    if isinstance(expected, str) and " or " in expected:  # pydantic's "'a', 'b' or 'c'"
        choices, _, last = expected.rpartition(" or ")
        ctx = {**ctx, "expected": gettext(CHOICES).format(choices=choices, last=last)}
    try:
        return gettext(template).format(**ctx)
    except (KeyError, IndexError):
        return msg


def _validation_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Keep where and why, drop the submitted values: they may be personal data."""
    return [
        {
            "loc": list(e.get("loc", ())),
            "msg": validation_message(e),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc.errors())
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            status=400,
            title=N_("Malformed JSON"),
            slug="malformed-json",
            request=request,
            detail=N_(
                "The body is not valid JSON. Check quotes, commas and brackets, then resend."
            ),
        )
    if _body_not_json(request, errors):
        return await _service_error(request, UnsupportedMediaType())
    return problem_response(
        status=422,
        title=ValidationFailed.title,
        slug=ValidationFailed.slug,
        detail=ValidationFailed.detail,
        request=request,
        errors=errors,
    )


def _body_not_json(request: Request, errors: list[dict[str, Any]]) -> bool:
    """Whether a body was sent, not as JSON, to an endpoint that reads JSON.

    FastAPI then hands the raw bytes to the model, which fails as a whole ('body' itself).
    """
    content_type = request.headers.get("content-type", "")
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    is_json = main == "application" and (sub == "json" or sub.endswith("+json"))
    return not is_json and any(e["loc"] == ["body"] and e["type"] != "missing" for e in errors)


HTTP_DETAILS = {
    404: (NotFound, N_("Nothing exists at this address. Check the path against /docs.")),
    405: (
        MethodNotAllowed,
        N_("This address does not accept this method; see /docs for allowed ones."),
    ),
}


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    known = HTTP_DETAILS.get(exc.status_code)
    if known:
        error_cls, detail = known
        return problem_response(
            status=exc.status_code,
            title=error_cls.title,
            slug=error_cls.slug,
            detail=detail,
            request=request,
            headers=exc.headers,
        )
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else phrase
    return problem_response(
        status=exc.status_code,
        title=phrase,
        slug=phrase.lower().replace(" ", "-"),
        detail=detail,
        request=request,
        headers=exc.headers,
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # A dropped connection (database restart, pg_terminate_backend) is transient, not a bug:
    # the transaction was rolled back, so the caller may simply retry.
    lost = isinstance(exc, sqlalchemy.exc.InterfaceError) or (
        isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated
    )
    if not lost:
        return await _unhandled(request, exc)
    logger.error("database connection lost", extra={"error_type": type(exc).__name__})
    return problem_response(
        status=503,
        title=UpstreamUnavailable.title,
        slug="database-unavailable",
        detail=N_(
            "The database connection was interrupted and nothing was saved. Try again "
            "(with the same Idempotency-Key where you send one)."
        ),
        request=request,
        headers={"Retry-After": "1"},
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unhandled error",
        exc_info=exc,
        extra={"error_type": type(exc).__name__, **_log_context(request)},
    )
    return problem_response(
        status=500,
        title=ServiceError.title,
        slug=ServiceError.slug,
        detail=ServiceError.detail,
        request=request,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error, ours or the framework's, answer problem+json."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unhandled)
