"""JSON logs that cannot carry request bodies or personal data."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

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


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k in ALLOWED_EXTRA})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr through the redaction filter; idempotent."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
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
