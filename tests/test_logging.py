"""Operable logs: UTC timestamps with milliseconds, the service's name, and a 500's stack trace
made of code locations only (never a value or an exception message: they may be personal data)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from services.directory.app import create_app
from services.directory.settings import DirectorySettings
from shared.logging import JsonFormatter
from tests.conftest import DatabaseFactory

CANARY = "Amina-Canary-7f3e"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _lookup(casefile: dict[str, str]) -> str:
    return casefile["household_size"]


def _route_with_personal_data() -> None:
    casefile = {"given_name": CANARY}
    try:
        _lookup(casefile)
    except KeyError as error:
        raise ValueError(f"cannot route {casefile['given_name']}") from error


def _entries(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
async def failing_directory(
    capsys: pytest.CaptureFixture[str], database_factory: DatabaseFactory, jwks_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The directory with one route that fails holding personal data, served in process.

    It asks for `capsys` first, so the log handler the app installs writes where tests read.
    """
    settings = DirectorySettings(
        environment="test",
        database_url=database_factory.fresh("directory", "sqlite"),
        jwks_file=jwks_file,
        log_level="INFO",
    )
    app = create_app(settings)
    app.add_api_route("/fail", _route_with_personal_data)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.mark.promise(12)
class TestOperableLogs:
    async def test_a_500_logs_where_it_failed_and_why_without_the_values(
        self, failing_directory: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
    ) -> None:
        response = await failing_directory.get("/fail")
        assert response.status_code == 500
        logged = capsys.readouterr().err
        assert CANARY not in logged
        failure = next(e for e in _entries(logged) if e["msg"] == "unhandled error")
        assert failure["error_type"] == "ValueError"
        assert response.json()["instance"] == f"urn:request:{failure['request_id']}"
        assert failure["service"] == "directory"
        assert any(
            frame.startswith("tests/test_logging.py:")
            and frame.endswith(" in _route_with_personal_data")
            for frame in failure["stack"]
        )
        (cause,) = failure["causes"]
        assert cause["error_type"] == "KeyError"
        assert cause["stack"][-1].endswith(" in _lookup")

    async def test_every_line_has_a_utc_millisecond_timestamp_and_the_service(
        self, failing_directory: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await failing_directory.get("/healthz")
        entries = _entries(capsys.readouterr().err)
        assert any(e["logger"] == "refex.access" for e in entries)
        for entry in entries:
            assert TIMESTAMP.match(entry["ts"]), entry["ts"]
            assert entry["service"] == "directory"

    def test_the_timestamp_is_utc_whatever_the_local_zone(self) -> None:
        at = datetime(2026, 12, 3, 13, 45, 12, 345000, tzinfo=UTC).timestamp()
        record = logging.LogRecord("refex.test", logging.INFO, __file__, 1, "ready", None, None)
        record.created, record.msecs = at, 345.0
        assert orjson.loads(JsonFormatter().format(record))["ts"] == "2026-12-03T13:45:12.345Z"
