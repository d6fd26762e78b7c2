"""JSON logs that cannot carry request bodies or personal data."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from shared.telemetry import current_trace_id

# Extra keys a log call may attach; anything else (a body, a case file) is dropped.
ALLOWED_EXTRA = frozenset(
    {
        "service",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "client_id",
        "org",
        "problem",
        "error_type",
        "event",
        "attempt",
        "count",
        "object_id",
        "upstream",
        "port",
    }
)
# Libraries whose messages format only addresses and versions, never request content.
TRUSTED_FORMAT_LOGGERS = ("uvicorn", "alembic")
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MAX_FRAMES = 40
MAX_CAUSES = 4
# Several apps can share one process (tests, benchmarks): each binds its name for the requests
# and background tasks it runs; the process default names the single service of a real process.
current_service: ContextVar[str | None] = ContextVar("refex_service", default=None)
_process_service: list[str] = []


def set_process_service(name: str) -> None:
    """Name the service this process runs, for lines logged outside any app's context."""
    _process_service[:] = [name]


def service_name() -> str | None:
    """Return the service a log line written now belongs to, if known."""
    return current_service.get() or (_process_service[0] if _process_service else None)


class RedactingFilter(logging.Filter):
    """Drop any extra attribute not on the allow-list, so bodies never reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in list(vars(record)):
            if key not in _STANDARD_ATTRS and key not in ALLOWED_EXTRA:
                delattr(record, key)
        if record.args and not record.name.startswith(TRUSTED_FORMAT_LOGGERS):
            # Formatting arguments could interpolate personal data into the message.
            record.msg = f"{record.msg} [arguments withheld]"
            record.args = None
        return True


def utc_timestamp(created: float) -> str:
    """Format a record's time as ISO 8601 UTC with milliseconds, e.g. 2026-12-03T13:45:12.345Z."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _short_path(filename: str) -> str:
    """Name a source file relative to the project or its installed package, never the home."""
    path = Path(filename)
    if path.is_relative_to(PROJECT_ROOT):
        return str(path.relative_to(PROJECT_ROOT))
    _, marker, inside = filename.rpartition("site-packages/")
    return inside if marker else filename


def stack_frames(trace: TracebackType | None) -> list[str]:
    """Return `file:line in function` for each frame, innermost last.

    Only code locations: local variables and the exception message may hold personal data.
    """
    frames: list[str] = []
    while trace is not None:
        code = trace.tb_frame.f_code
        frames.append(f"{_short_path(code.co_filename)}:{trace.tb_lineno} in {code.co_qualname}")
        trace = trace.tb_next
    return frames[-MAX_FRAMES:]


def _causes(error: BaseException) -> Iterator[BaseException]:
    """Yield the exceptions that led to `error` (`raise ... from`, or raised while handling)."""
    seen = {id(error)}
    while len(seen) <= MAX_CAUSES:
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if cause is None or id(cause) in seen:
            return
        seen.add(id(cause))
        yield cause
        error = cause


def error_fields(error: BaseException) -> dict[str, Any]:
    """The type and stack of an exception and of its causes, without messages or values."""
    fields: dict[str, Any] = {
        "error_type": type(error).__name__,
        "stack": stack_frames(error.__traceback__),
    }
    causes = [
        {"error_type": type(cause).__name__, "stack": stack_frames(cause.__traceback__)}
        for cause in _causes(error)
    ]
    if causes:
        fields["causes"] = causes
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: UTC time with milliseconds, service, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": utc_timestamp(record.created),
            "service": service_name(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k in ALLOWED_EXTRA})
        trace_id = current_trace_id()
        if trace_id is not None:
            entry["trace_id"] = trace_id
        if record.exc_info and record.exc_info[1] is not None:
            entry.update(error_fields(record.exc_info[1]))
        return orjson.dumps(entry, default=str).decode()


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever `sys.stderr` is when a line is logged, not when logging was set up."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _stream: Any) -> None:
        """Ignore the stream the base class stores."""


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr through the redaction filter; idempotent."""
    # A failing handler would otherwise print the exception being logged, message and all.
    logging.raiseExceptions = False
    root = logging.getLogger()
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every URL at INFO; URLs are kept out of logs on principle.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
